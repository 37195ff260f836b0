"""Suricata as a source: eve.json (`fileinfo` events with their flow, app-layer fields and hashes, `flow`
events, `tls` for the SNI) and file-store v2 (filestore/<xx>/<sha256>, with <sha256>.<ts>.<id>.json beside it
when write-fileinfo is on). Each fileinfo record becomes a SeenFile carrying flow_id and community_id, with the
stored bytes where file-store kept them; flow events become flows."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from loguru import logger

from sensor.bridges.base import Bridged, SeenFile, address, cid, direction, json_objects
from sensor.flow.direction import HomeNet
from sensor.model import AppMeta, FlowRecord, NetworkOrigin, SensorRef
from sensor.stats import RunStats

STORED = re.compile(r"(?:^|/)([0-9a-f]{2})/(\1[0-9a-f]{62})$")


def sniff(head: bytes) -> bool:
    """True when `head` starts eve JSON lines (an object with event_type and timestamp)."""
    line = head.split(b"\n", 1)[0].strip()
    if not line.startswith(b"{") or b'"event_type"' not in line:
        return False
    try:
        rec = json.loads(line)
    except ValueError:
        return False
    return isinstance(rec, dict) and "event_type" in rec and "timestamp" in rec


def _time(text: object) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


@dataclass
class SuricataBridge:
    """eve.json files, file-store files and their metadata given to one scan; `results()` once all are added."""

    home: HomeNet
    stats: RunStats
    eves: list[str] = field(default_factory=list)
    stored: dict[str, str] = field(default_factory=dict)  # sha256 -> filestore path

    def add_eve(self, path: str) -> None:
        self.eves.append(path)
        self.stats.bridge["suricata.eve_files"] += 1

    def add_stored(self, path: str) -> bool:
        """Keep `path` when it is a file-store v2 file (<xx>/<sha256>); False when it is not one."""
        m = STORED.search(path.replace("\\", "/"))
        if m:
            self.stored[m.group(2)] = path
        return m is not None

    def _records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for path in self.eves:
            bad = 0
            try:
                for rec in json_objects(path):
                    if rec is None:
                        bad += 1
                    else:
                        yield path, rec
            except OSError as e:
                self.stats.errors["eve"] += 1
                logger.error("{}: cannot read: {}", path, e.strerror or e)
            if bad:
                self.stats.errors["eve_lines"] += bad
                logger.error("{}: {} lines that are not JSON objects: skipped", path, bad)

    def results(self) -> Iterator[Bridged | str]:
        """Flows from flow events, then every fileinfo record as a SeenFile; stored files no record names come
        last, as their paths (scanned as files, without a flow)."""
        files: list[tuple[str, dict[str, Any]]] = []
        flows: dict[Any, tuple[str, dict[str, Any]]] = {}
        sni: dict[Any, str] = {}
        ftp_data: dict[Any, dict[str, Any]] = {}  # a data connection's command: fileinfo does not carry it
        keys: set[tuple[Any, ...]] = set()
        for path, rec in self._records():
            kind = rec.get("event_type")
            if kind == "fileinfo" and isinstance(rec.get("fileinfo"), dict):
                fi = rec["fileinfo"]
                key = (rec.get("flow_id"), fi.get("file_id"), fi.get("tx_id"), fi.get("sha256"), fi.get("filename"))
                if key not in keys:  # eve.json and the file-store's .json beside a file hold the same record
                    keys.add(key)
                    files.append((path, rec))
            elif kind == "flow":
                flows[rec.get("flow_id")] = (path, rec)
            elif kind == "ftp_data" and isinstance(rec.get("ftp_data"), dict):
                ftp_data[rec.get("flow_id")] = rec["ftp_data"]
            elif kind == "tls" and isinstance(rec.get("tls"), dict) and rec["tls"].get("sni"):
                sni[rec.get("flow_id")] = str(rec["tls"]["sni"])
        for path, rec in flows.values():
            flow = self._flow(path, rec, sni.get(rec.get("flow_id")))
            if flow is not None:
                self.stats.bridge["suricata.flows"] += 1
                yield flow
        self.stats.bridge["suricata.files"] += len(files)
        named: set[str] = set()
        for path, rec in files:
            if "ftp_data" not in rec and rec.get("flow_id") in ftp_data:
                rec = {**rec, "ftp_data": ftp_data[rec.get("flow_id")]}
            seen = self._seen(path, rec, flows.get(rec.get("flow_id"), ("", None))[1])
            if seen is not None:
                if seen.app.sensor and seen.app.sensor.extracted:
                    named.add(seen.app.sensor.extracted)
                yield seen
        for _, path in sorted(self.stored.items()):
            if path not in named:
                self.stats.bridge["suricata.stored_without_record"] += 1
                logger.warning("{}: no eve fileinfo record names this stored file: scanned without its flow", path)
                yield path

    def _flow(self, path: str, rec: dict[str, Any], server_name: str | None) -> FlowRecord | None:
        f = rec.get("flow") or {}
        try:
            src, sport = str(rec["src_ip"]), int(rec.get("src_port") or 0)
            dst, dport = str(rec["dest_ip"]), int(rec.get("dest_port") or 0)
        except (KeyError, ValueError, TypeError):
            return None
        transport = str(rec.get("proto") or "").lower()
        start = _time(f.get("start")) or _time(rec.get("timestamp")) or 0.0
        end = _time(f.get("end")) or start
        return FlowRecord(
            community_id=str(rec.get("community_id") or cid(src, sport, dst, dport, transport)),
            transport=transport, src=src, sport=sport, dst=dst, dport=dport,
            direction=direction(self.home, src, dst, (None, None)), start=start, end=end,
            packets=(int(f.get("pkts_toserver") or 0), int(f.get("pkts_toclient") or 0)),
            bytes=(_payload(f, "toserver"), _payload(f, "toclient")),
            gaps=0, gap_bytes=0, overlaps=0, overlap_conflicts=0,
            end_reason=f"suricata {f.get('state') or '-'} {f.get('reason') or '-'}",
            mid_stream=False, depth_hit=False, sni=server_name, source=path,
        )  # fmt: skip

    def _seen(self, path: str, rec: dict[str, Any], flow: dict[str, Any] | None) -> SeenFile | None:
        fi = rec["fileinfo"]
        try:
            src, sport = str(rec["src_ip"]), int(rec.get("src_port") or 0)
            dst, dport = str(rec["dest_ip"]), int(rec.get("dest_port") or 0)
        except (KeyError, ValueError, TypeError):
            self.stats.bridge["suricata.files_without_flow"] += 1
            return None
        transport = str(rec.get("proto") or "tcp").lower()
        if flow is not None and "src_ip" in flow:
            client_to_server = (str(flow["src_ip"]), int(flow.get("src_port") or 0)) == (src, sport)
            start = _time((flow.get("flow") or {}).get("start"))
        else:
            client_to_server = sport >= dport  # a client's port is the ephemeral one, as a rule
            start = None
        ts = _time(rec.get("timestamp")) or 0.0
        sha = fi.get("sha256")
        stored = self.stored.get(str(sha)) if fi.get("stored") and sha else None
        app_proto = str(rec.get("app_proto") or "") or None
        app = _app(rec, app_proto)
        ref = SensorRef(
            "suricata", path, flow_id=rec.get("flow_id"), file_id=fi.get("file_id"), mime_type=fi.get("magic"),
            md5=fi.get("md5"), sha1=fi.get("sha1"), sha256=sha, extracted=stored,
        )  # fmt: skip
        origin = NetworkOrigin(
            src=src, sport=sport, dst=dst, dport=dport, transport=transport,
            direction=direction(self.home, src, dst, (None, None)),
            community_id=str(rec.get("community_id") or cid(src, sport, dst, dport, transport)),
            flow_start=start or ts, ts=ts, packet=int(rec.get("pcap_cnt") or 0), source=stored or path,
            client_to_server=client_to_server, protocol=app_proto,
        )  # fmt: skip
        name = fi.get("filename")
        if name and app_proto in ("http", "ftp-data", "ftp"):
            name = PurePosixPath(str(name).split("?", 1)[0]).name or None
        state = str(fi.get("state") or "")
        return SeenFile(
            origin=origin,
            name=str(name) if name else None,
            size=fi.get("size"),
            truncated=state in ("TRUNCATED", "ERROR") or bool(fi.get("gaps")),
            app=AppMeta(**{**app, "sensor": ref}),
        )


HEADERS = 54  # Ethernet, IPv4 and TCP without options: what each packet adds to Suricata's byte counts


def _payload(flow: dict[str, Any], side: str) -> int:
    """A side's payload bytes, as a flow record counts them: Suricata counts whole packets, so their headers
    (at least HEADERS bytes each) come off; TCP options and IPv6 leave a little more than the payload."""
    total, packets = int(flow.get(f"bytes_{side}") or 0), int(flow.get(f"pkts_{side}") or 0)
    return max(0, total - HEADERS * packets)


def _app(rec: dict[str, Any], app_proto: str | None) -> dict[str, Any]:
    """AppMeta fields from the app-layer block a fileinfo record carries."""
    if isinstance(rec.get("http"), dict):
        h = rec["http"]
        return {"protocol": "http", "method": h.get("http_method"), "url": h.get("url"), "domain": h.get("hostname"),
                "user_agent": h.get("http_user_agent"), "status": h.get("status")}  # fmt: skip
    if isinstance(rec.get("smtp"), dict) or isinstance(rec.get("email"), dict):
        s, e = rec.get("smtp") or {}, rec.get("email") or {}
        to = s.get("rcpt_to") or e.get("to") or ()
        return {"protocol": "smtp", "mail_from": address(s.get("mail_from") or e.get("from")),
                "rcpt_to": tuple(a for a in map(address, to) if a), "subject": e.get("subject")}  # fmt: skip
    if isinstance(rec.get("ftp_data"), dict):
        f = rec["ftp_data"]
        return {"protocol": "ftp", "command": f.get("command"), "url": f.get("filename")}
    if isinstance(rec.get("smb"), dict):
        return {"protocol": "smb", "command": rec["smb"].get("command")}
    return {"protocol": app_proto or "unknown"}


__all__ = ["SuricataBridge", "sniff"]
