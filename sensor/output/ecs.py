"""Finding -> ECS record (DESIGN.md output contract): the only place where output dicts are built."""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

from sensor.model import (
    AppMeta,
    FileOrigin,
    Finding,
    FlowRecord,
    HostFinding,
    Identity,
    Incident,
    NetworkOrigin,
    ObjectRecord,
    OpaqueFile,
    Tuned,
)
from sensor.names import clean_record

TECHNIQUE = "T1560.002"


def iso(ts: float) -> str:
    """RFC 3339 UTC with microseconds, as ECS `@timestamp` wants."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def observer_fields(name: str, ips: tuple[str, ...]) -> dict[str, Any]:
    """ECS observer.*: which sensor saw it; stamped on every record a run writes."""
    return _drop_none({"name": name, "ip": list(ips) or None, "type": "sensor", "vendor": "stagewatch"})


def tuned_fields(t: Tuned | None) -> dict[str, Any]:
    """`stagewatch.suppressed` (entry, reason, author) or `stagewatch.threshold` (the alert it folds into)."""
    if t is None:
        return {}
    if t.how == "suppressed":
        return {"suppressed": _drop_none({"name": t.entry, "reason": t.reason, "author": t.author})}
    return {"threshold": _drop_none({"name": t.entry, "first": t.first, "count": t.count, "reason": t.reason})}


def finding_record(f: Finding) -> dict[str, Any]:
    """The JSON-lines record of one finding."""
    m = f.member
    o = f.origin
    inner = m.inner
    sw: dict[str, Any] = {
        "format": str(m.format),
        "verified": True,
        "proof": str(m.proof),
        "encoding": list(f.encoding),
        "offset": m.offset,
        "truncated": m.truncated,
        "checksum": str(m.checksum),
        "encrypted": m.encrypted,
        "compressed": m.compressed,
        "container": _drop_none(
            {"sha256": f.container.sha256, "size": f.container.size, "mime_type": f.container.mime_type}
        ),
        "sensitive": list(f.sensitive),
        "limits": [{"limit": str(h.limit), "value": h.value} for h in m.limits],
        "reasons": list(f.reasons),
    }
    if m.checksum_failures is not None:
        # which archive entries made `checksum` bad: the first few names, how many failed, how many were checked
        sw["checksum_failed"] = list(m.checksum_failures.names)
        sw["checksum_failed_count"] = m.checksum_failures.count
        sw["checksum_checked"] = m.checksum_failures.checked
    if f.encoding_offset is not None:
        sw["encoding_offset"] = f.encoding_offset
    if inner is not None:
        sw["inner"] = _drop_none(
            {"mime_type": inner.mime_type, "size": inner.size, "complete": inner.complete, "names": list(inner.names)}
        )
    if f.content_rules:
        sw.setdefault("inner", {})["rules"] = list(f.content_rules)
    if f.streams is not None:
        # a container's by-design members folded into this one record (count, per format, bytes)
        sw["streams"] = {
            "count": f.streams.count,
            "formats": {str(fmt): n for fmt, n in f.streams.formats},
            "bytes": f.streams.bytes,
        }
    sw.update(tuned_fields(f.tuned))
    extras = {"stored_name": m.stored_name, "writer": m.writer, "detail": m.detail}
    if m.header_mtime:
        extras["header_time"] = iso(m.header_mtime)
    sw.update(_drop_none(extras))
    record: dict[str, Any] = {
        "@timestamp": iso(f.timestamp),
        "event": {
            "id": f.event_id,
            "kind": str(f.kind),
            "category": ["file"],
            "type": ["info"],
            "module": "stagewatch",
            "dataset": "stagewatch.finding",
            "severity": f.severity,
            "created": iso(f.created),
        },
        "rule": {"name": f.rule, "ruleset": "compression"},
        "threat": {"technique": {"id": [TECHNIQUE]}},
        "observer": observer_fields(f.observer, ()),
    }
    file: dict[str, Any] = {"size": m.length, "hash": {"sha256": m.sha256}}
    if inner is not None and inner.mime_type:
        file["mime_type"] = _format_mime(str(m.format))
    if isinstance(o, NetworkOrigin):
        record["event"]["category"] = ["network"]
        record["source"] = {"ip": o.src, "port": o.sport}
        record["destination"] = {"ip": o.dst, "port": o.dport}
        record["network"] = _drop_none(
            {
                "transport": o.transport,
                "direction": o.direction,
                "protocol": o.protocol,
                "community_id": o.community_id,
            }
        )
        sw["source"] = {"path": o.source, "packet": o.packet}
        sw["flow"] = {"start": iso(o.flow_start), "client_to_server": o.client_to_server}
        sw["object_index"] = f.object_index
        if f.name:
            file["name"] = f.name
        record.update(app_fields(f.app))
        sw.update(app_stagewatch(f.app))
        if o.sni:
            record["tls"] = {"client": {"server_name": o.sni}}
    if isinstance(o, FileOrigin):
        file.update(
            {
                "path": o.path,
                "name": o.path.rsplit("/", 1)[-1],  # a local path: a backslash is part of a Linux name
                "owner": o.owner,
                "mtime": iso(o.mtime),
            }
        )
        record["host"] = {"name": o.host}
        sw["source"] = {"path": o.root}
    record["file"] = _drop_none(file)
    record["stagewatch"] = sw
    return clean_record(record)


def app_stagewatch(app: AppMeta | None) -> dict[str, Any]:
    """stagewatch.http.*: the framing reading that gave a body and the irregularities of its message;
    stagewatch.dns.*: what a DNS tunnel's object was made of."""
    if app is None:
        return {}
    out: dict[str, Any] = {}
    if app.reading is not None or app.anomalies:
        out["http"] = _drop_none({"reading": app.reading, "anomalies": list(app.anomalies) or None})
    if app.dns is not None:
        t = app.dns
        out["dns"] = _drop_none(
            {
                "zone": t.zone,
                "messages": t.queries,
                "first": iso(t.first),
                "last": iso(t.last),
                "sequence": t.sequence,
                "lost": t.lost or None,
            }
        )
    if app.sensor is not None:
        r = app.sensor
        hashes = _drop_none({"md5": r.md5, "sha1": r.sha1, "sha256": r.sha256})
        out["bridge"] = _drop_none(
            {"sensor": r.sensor, "log": r.log, "file": r.extracted, "mime_type": r.mime_type, "hash": hashes or None}
        )
    return out


def app_fields(app: AppMeta | None) -> dict[str, Any]:
    """ECS http.*, url.*, user_agent.*, email.* (and the command of ftp, imap and pop3) of an object."""
    if app is None:
        return {}
    out: dict[str, Any] = {}
    http: dict[str, Any] = {}
    if app.method:
        http["request"] = {"method": app.method}
    if app.status is not None:
        http["response"] = {"status_code": app.status}
    if http:
        out["http"] = http
    url = _drop_none({"original": app.url, "domain": app.domain})
    if url:
        out["url"] = url
    if app.user_agent:
        out["user_agent"] = {"original": app.user_agent}
    email = _drop_none(
        {
            "from": {"address": [app.mail_from]} if app.mail_from else None,
            "to": {"address": list(app.rcpt_to)} if app.rcpt_to else None,
            "subject": app.subject,
        }
    )
    if email:
        out["email"] = email
    if app.command:
        out[app.protocol] = {"command": app.command}  # ftp.command, imap.command, pop3.command
    if app.dns is not None:
        out["dns"] = {"type": "answer" if app.dns.answers else "query",
                      "question": {"registered_domain": app.dns.registered_domain}}  # fmt: skip
    ref = app.sensor
    if ref is not None and ref.sensor == "zeek":
        out["zeek"] = _drop_none({"uid": ref.uid, "fuid": ref.fuid})
    elif ref is not None:
        out[ref.sensor] = _drop_none({"flow_id": ref.flow_id, "file_id": ref.file_id})
    return out


def opaque_record(o: OpaqueFile) -> dict[str, Any]:
    """The JSON record of a staged file of no known type whose bytes are near-uniform: an event, not a finding."""
    f = o.origin
    return clean_record(
        _drop_none(
            {
                "@timestamp": iso(f.mtime),
                "event": {"kind": "event", "category": ["file"], "module": "stagewatch", "dataset": "stagewatch.opaque",
                          "created": iso(time.time())},
                "host": {"name": f.host},
                "file": _drop_none({"path": f.path, "name": os.path.basename(f.path), "size": f.size,
                                    "owner": f.owner, "mtime": iso(f.mtime), "hash": {"sha256": o.sha256},
                                    "mime_type": o.mime_type}),
                "stagewatch": {
                    "opaque": {"entropy": o.entropy, "chi_square": o.chi_square, "sample": o.sample,
                               "verdict": o.verdict},
                    "source": {"path": f.root},
                },
            }
        )
    )  # fmt: skip


def identity_record(i: Identity) -> dict[str, Any]:
    """The JSON record of one identity: an address, the host name the wire gave it, how and from when."""
    return clean_record(
        _drop_none(
            {
                "@timestamp": iso(i.ts),
                "event": {"kind": "event", "category": ["network", "host"], "module": "stagewatch",
                          "dataset": "stagewatch.identity"},
                "host": _drop_none({"name": i.name, "ip": [i.address], "mac": [i.mac] if i.mac else None}),
                "stagewatch": {
                    "identity": _drop_none(
                        {"source": i.source, "until": iso(i.until) if i.until is not None else None,
                         "detail": i.detail}
                    ),
                    "source": {"path": i.capture, "packet": i.packet},
                },
            }
        )
    )  # fmt: skip


def object_record(r: ObjectRecord) -> dict[str, Any]:
    """A files.log-like JSON line for one application object (`--objects`)."""
    o = r.origin
    record: dict[str, Any] = {
        "@timestamp": iso(o.ts),
        "event": {
            "kind": "event",
            "category": ["network", "file"],
            "module": "stagewatch",
            "dataset": "stagewatch.object",
        },
        "source": {"ip": o.src, "port": o.sport},
        "destination": {"ip": o.dst, "port": o.dport},
        "network": _drop_none(
            {"transport": o.transport, "direction": o.direction, "protocol": o.protocol, "community_id": o.community_id}
        ),
        "file": _drop_none(
            {
                "name": r.name,
                "size": r.size,
                "hash": {"sha256": r.sha256} if r.sha256 else None,
                "mime_type": r.mime_type,
            }
        ),
        "stagewatch": {
            "encoding": list(r.layers),
            "truncated": r.truncated,
            "object_index": r.index,
            "source": {"path": o.source, "packet": o.packet},
            "flow": {"start": iso(o.flow_start), "client_to_server": o.client_to_server},
        },
    }
    if r.limits:
        record["stagewatch"]["limits"] = [{"limit": str(h.limit), "value": h.value, "where": h.where} for h in r.limits]
    if not r.scanned:
        record["stagewatch"]["scanned"] = False  # another sensor logged it; its bytes were not kept
    record.update(app_fields(r.app))
    record["stagewatch"].update(app_stagewatch(r.app))
    return clean_record(record)


def flow_record(r: FlowRecord) -> dict[str, Any]:
    """A conn.log-like JSON line for one flow (`--flows`)."""
    return clean_record(
        _drop_none(
            {
                "@timestamp": iso(r.start),
                "event": {
                    "kind": "event",
                    "category": ["network"],
                    "type": ["connection", "end"],
                    "module": "stagewatch",
                    "dataset": "stagewatch.flow",
                    "start": iso(r.start),
                    "end": iso(r.end),
                    "duration": round((r.end - r.start) * 1e6) * 1000,
                },
                "source": {"ip": r.src, "port": r.sport, "packets": r.packets[0], "bytes": r.bytes[0]},
                "destination": {"ip": r.dst, "port": r.dport, "packets": r.packets[1], "bytes": r.bytes[1]},
                "network": {
                    "transport": r.transport,
                    "direction": r.direction,
                    "community_id": r.community_id,
                    "packets": sum(r.packets),
                    "bytes": sum(r.bytes),
                },
                "tls": {"client": {"server_name": r.sni}} if r.sni else None,
                "stagewatch": {
                    "flow": {
                        "end_reason": r.end_reason,
                        "gaps": r.gaps,
                        "gap_bytes": r.gap_bytes,
                        "overlaps": r.overlaps,
                        "overlap_conflicts": r.overlap_conflicts,
                        "mid_stream": r.mid_stream,
                        "depth_hit": r.depth_hit,
                    },
                    "source": {"path": r.source},
                },
            }
        )
    )


_MIMES = {
    "gzip": "application/gzip",
    "zlib": "application/zlib",
    "deflate": "application/octet-stream",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "lzma": "application/x-lzma",
    "zstd": "application/zstd",
    "lz4": "application/x-lz4",
    "snappy": "application/x-snappy-framed",
    "zip": "application/zip",
    "7z": "application/x-7z-compressed",
    "rar": "application/vnd.rar",
    "cab": "application/vnd.ms-cab-compressed",
    "tar": "application/x-tar",
}


def _format_mime(fmt: str) -> str:
    """`file.mime_type` of the carved member: its own format's type (the inner type is under stagewatch.inner)."""
    return _MIMES.get(fmt, "application/octet-stream")


CATEGORY = {
    "process": ["process"],
    "image_load": ["library"],
    "file_create": ["file"],
    "file_delete": ["file"],
    "network": ["network"],
    "script": ["process"],
}


def host_finding_record(h: HostFinding) -> dict[str, Any]:
    """The JSON-lines record of a host-rule hit (ECS process/file/dll fields)."""
    e = h.event
    record: dict[str, Any] = {
        "@timestamp": iso(e.ts),
        "event": {
            "id": h.finding_id,
            "kind": "event",  # a host-rule hit alone is never an incident (DESIGN.md)
            "category": CATEGORY.get(e.action, ["host"]),
            "type": ["info"],
            "module": "stagewatch",
            "dataset": "stagewatch.host_finding",
            "severity": h.severity,
            "code": e.code,
            "provider": e.provider,
        },
        "rule": {"id": h.rule_id, "name": h.rule, "ruleset": "host"},
        "threat": {"technique": {"id": list(h.techniques)}},
        "host": _drop_none({"name": e.host, "ip": list(e.host_ips) or None}),
        "process": _drop_none(
            {
                "executable": e.image,
                "command_line": e.command_line,
                "pid": e.pid,
                "entity_id": e.process_guid,
                "parent": _drop_none({"executable": e.parent_image, "pid": e.ppid}) or None,
            }
        ),
        "user": {"name": e.user} if e.user else None,
        "file": {"path": e.target_file, "name": e.target_file.replace("\\", "/").rsplit("/", 1)[-1]}
        if e.target_file
        else None,
        "dll": {"path": e.loaded_image} if e.loaded_image else None,
        "powershell": {"file": {"script_block_text": e.script}} if e.script else None,
        "stagewatch": {
            "label": h.label,
            "operation": h.operation,
            "reasons": list(h.reasons),
            "source": {"path": e.source, "record_id": e.record_id},
            "source_label": e.label,
            **tuned_fields(h.tuned),
        },
    }
    return clean_record(_drop_none(record))


def incident_record(i: Incident) -> dict[str, Any]:
    """The JSON-lines record of an incident: who, what, where to, how sure, and the evidence by id."""
    return clean_record(
        _drop_none(
            {
                "@timestamp": iso(i.start),
                "event": {
                    "id": i.incident_id,
                    "kind": "alert",
                    "category": ["intrusion_detection"],
                    "type": ["indicator"],
                    "module": "stagewatch",
                    "dataset": "stagewatch.incident",
                    "start": iso(i.start),
                    "end": iso(i.end),
                    "risk_score": i.score,
                },
                "host": _drop_none({"name": i.host, "ip": list(i.host_ips) or None}),
                "process": _drop_none(
                    {"executable": i.process_image, "command_line": i.process_command_line, "pid": i.process_pid}
                )
                or None,
                "user": {"name": i.user} if i.user else None,
                "threat": {"technique": {"id": list(i.techniques)}},
                "stagewatch": {
                    "incident": {
                        "score": i.score,
                        "reasons": list(i.reasons),
                        "kinds": list(i.kinds),
                        "files": list(i.files),
                        "destinations": list(i.destinations),
                        **({"related": list(i.related), "related_sha256": list(i.related_sha256)} if i.related else {}),
                        **({"host_named_by": i.host_named_by} if i.host_named_by else {}),
                        "evidence": [
                            _drop_none(
                                {
                                    "kind": e.kind,
                                    "id": e.ref,
                                    "@timestamp": iso(e.ts),
                                    "summary": e.summary,
                                    "sha256": e.sha256,
                                    "source": e.source,
                                }
                            )
                            for e in i.evidence
                        ],
                    }
                },
            }
        )
    )
