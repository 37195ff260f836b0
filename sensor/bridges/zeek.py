"""Zeek as a source: files.log (both schemas: uid and id.* columns since Zeek 5, tx_hosts/rx_hosts/conn_uids
before), conn.log, http.log, smtp.log, ftp.log and the extract_files/ folder. Each file row becomes a SeenFile
carrying its connection, direction, protocol, names and Zeek's uid/fuid, with the extracted bytes when Zeek
kept them; conn.log rows become flows. Logs are read whole before any file is described, in one process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

from loguru import logger

from sensor.bridges.base import Bridged, SeenFile, address, cid, direction, first
from sensor.bridges.zeek_log import BadLog, ZeekLog, rows
from sensor.flow.direction import HomeNet
from sensor.model import AppMeta, FlowRecord, NetworkOrigin, SensorRef
from sensor.stats import RunStats

# FileExtract's default name: extract-<ts>-<source>-<fuid>
EXTRACT_NAME = re.compile(r"^extract-(\d+\.\d+)-([A-Za-z0-9_]+)-(F[A-Za-z0-9]{5,})(?:\.[^/]*)?$")
SKIP_SOURCES = frozenset({"SSL", "X509", "OCSP_REPLY"})  # certificates and OCSP answers: no one's data
PROTOCOL = {"FTP_DATA": "ftp", "IRC_DATA": "irc"}


@dataclass(frozen=True, slots=True)
class _Conn:
    ts: float
    orig: tuple[str, int]
    resp: tuple[str, int]
    transport: str
    community_id: str | None
    local: tuple[bool | None, bool | None]  # local_orig, local_resp


@dataclass
class ZeekBridge:
    """Zeek logs and extracted files given to one scan; `results()` once everything was added."""

    home: HomeNet
    stats: RunStats
    logs: dict[str, list[ZeekLog]] = field(default_factory=dict)
    extracted: dict[str, str] = field(default_factory=dict)  # file name -> path
    by_fuid: dict[str, str] = field(default_factory=dict)  # fuid in FileExtract's default name -> path

    def add_log(self, log: ZeekLog) -> None:
        self.logs.setdefault(log.kind, []).append(log)
        self.stats.bridge[f"zeek.{log.kind}_logs"] += 1

    def add_extracted(self, path: str) -> None:
        name = PurePath(path).name
        self.extracted[name] = path
        m = EXTRACT_NAME.match(name)
        if m:
            self.by_fuid[m.group(3)] = path

    def _rows(self, kind: str) -> Iterator[tuple[ZeekLog, dict[str, Any]]]:
        for log in self.logs.get(kind, ()):
            try:
                for row in rows(log):
                    yield log, row
            except BadLog as e:
                self.stats.errors[e.reason] += 1
                logger.error("{}", e)
            except OSError as e:
                self.stats.errors["zeek_log"] += 1
                logger.error("{}: cannot read: {}", log.path, e.strerror or e)

    def results(self) -> Iterator[Bridged | str]:
        """Flows from conn.log, then every file row as a SeenFile; extracted files no row names come last, as
        their paths (scanned as files, without a connection)."""
        files = []
        for log, row in self._rows("files"):
            if row.get("source") in SKIP_SOURCES:
                self.stats.bridge["zeek.certificates_skipped"] += 1
            elif row.get("parent_fuid"):  # a file inside a file (Zeek 7's ZIP analyzer): the parent is scanned
                self.stats.bridge["zeek.inner_files_skipped"] += 1
            else:
                files.append((log, row))
        self.stats.bridge["zeek.files"] += len(files)
        wanted = {u for _, row in files for u in _uids(row)}
        conns: dict[str, _Conn] = {}
        for log, row in self._rows("conn"):
            flow = _flow(log, row, self.home)
            if flow is None:
                continue
            self.stats.bridge["zeek.flows"] += 1
            yield flow
            if row["uid"] in wanted:
                conns[row["uid"]] = _conn_of(row)
        apps: dict[str, tuple[AppMeta, str | None]] = {}
        for _, row in self._rows("http"):
            for side in ("orig", "resp"):
                names = row.get(f"{side}_filenames") or ()
                for i, fuid in enumerate(row.get(f"{side}_fuids") or ()):
                    app = AppMeta("http", method=row.get("method"), url=row.get("uri"), domain=row.get("host"),
                                  user_agent=row.get("user_agent"), status=row.get("status_code"))  # fmt: skip
                    apps[fuid] = (app, names[i] if i < len(names) else None)
        for _, row in self._rows("smtp"):
            rcpt = tuple(a for a in map(address, row.get("rcptto") or ()) if a)
            for fuid in row.get("fuids") or ():
                mail = AppMeta("smtp", mail_from=address(row.get("mailfrom")), rcpt_to=rcpt, subject=row.get("subject"))
                apps[fuid] = (mail, None)
        for _, row in self._rows("ftp"):
            if row.get("fuid"):
                arg = row.get("arg") or ""
                name = PurePath(arg.split("://", 1)[-1]).name or None
                apps[row["fuid"]] = (AppMeta("ftp", command=row.get("command"), url=arg or None), name)
        used: set[str] = set()
        for log, row in files:
            seen = self._seen(log, row, conns, apps, used)
            if seen is not None:
                yield seen
        for name, path in sorted(self.extracted.items()):
            if name not in used:
                self.stats.bridge["zeek.extracted_without_row"] += 1
                logger.warning("{}: no files.log row names this extracted file: scanned without its connection", path)
                yield path

    def _seen(self, log: ZeekLog, row: dict[str, Any], conns: dict[str, _Conn],
              apps: dict[str, tuple[AppMeta, str | None]], used: set[str]) -> SeenFile | None:  # fmt: skip
        fuid = row["fuid"]
        uid = next(iter(_uids(row)), None)
        conn = conns.get(uid) if uid else None
        is_orig = row.get("is_orig")
        if conn is not None:
            orig, resp, transport, local = conn.orig, conn.resp, conn.transport, conn.local
        elif "id.orig_h" in row:
            orig = (row["id.orig_h"], int(row.get("id.orig_p", 0)))
            resp = (row["id.resp_h"], int(row.get("id.resp_p", 0)))
            transport, local = "tcp", (None, None)
        elif row.get("tx_hosts") and row.get("rx_hosts"):
            # the older schema names the sender and the receiver, not the connection's sides
            tx, rx = first(row["tx_hosts"]) or "", first(row["rx_hosts"]) or ""
            orig, resp = ((tx, 0), (rx, 0)) if is_orig is not False else ((rx, 0), (tx, 0))
            transport, local = "tcp", (None, None)
        else:
            self.stats.bridge["zeek.files_without_connection"] += 1
            orig, resp, transport, local = ("", 0), ("", 0), "tcp", (None, None)
        sender, receiver = (orig, resp) if is_orig is not False else (resp, orig)
        local_pair = local if is_orig is not False else (local[1], local[0])
        app, app_name = apps.get(fuid, (None, None))
        extracted = self._extracted(row, fuid)
        if extracted is not None:
            used.add(PurePath(extracted).name)
        source = str(row.get("source") or "")
        protocol = PROTOCOL.get(source, source.lower() or None)
        ref = SensorRef(
            "zeek", log.path, uid=uid, fuid=fuid, mime_type=row.get("mime_type"), md5=row.get("md5"),
            sha1=row.get("sha1"), sha256=row.get("sha256"), extracted=extracted,
        )  # fmt: skip
        ts = float(row["ts"])
        origin = NetworkOrigin(
            src=sender[0], sport=sender[1], dst=receiver[0], dport=receiver[1], transport=transport,
            direction=direction(self.home, sender[0], receiver[0], local_pair),
            community_id=(conn.community_id if conn else None) or cid(orig[0], orig[1], resp[0], resp[1], transport),
            flow_start=conn.ts if conn else ts, ts=ts, packet=0, source=extracted or log.path,
            client_to_server=is_orig is not False, protocol=protocol,
        )  # fmt: skip
        app = app or AppMeta(protocol or "unknown")
        seen_bytes, total = row.get("seen_bytes"), row.get("total_bytes")
        truncated = bool(row.get("extracted_cutoff")) or bool(row.get("missing_bytes")) or bool(row.get("timedout"))
        if total is not None and seen_bytes is not None and seen_bytes < total:
            truncated = True
        return SeenFile(
            origin=origin,
            name=row.get("filename") or app_name,
            size=total if total is not None else seen_bytes,
            truncated=truncated,
            app=_with_ref(app, ref),
        )

    def _extracted(self, row: dict[str, Any], fuid: str) -> str | None:
        name = row.get("extracted")
        if name:
            path = self.extracted.get(PurePath(str(name)).name)
            if path is not None:
                return path
        return self.by_fuid.get(fuid)


def _uids(row: dict[str, Any]) -> tuple[str, ...]:
    if row.get("uid"):
        return (str(row["uid"]),)
    return tuple(str(u) for u in row.get("conn_uids") or ())


def _conn_of(row: dict[str, Any]) -> _Conn:
    return _Conn(
        ts=float(row["ts"]),
        orig=(str(row["id.orig_h"]), int(row["id.orig_p"])),
        resp=(str(row["id.resp_h"]), int(row["id.resp_p"])),
        transport=str(row.get("proto") or "tcp"),
        community_id=row.get("community_id"),
        local=(row.get("local_orig"), row.get("local_resp")),
    )


def _flow(log: ZeekLog, row: dict[str, Any], home: HomeNet) -> FlowRecord | None:
    try:
        c = _conn_of(row)
    except (KeyError, ValueError, TypeError):
        return None
    duration = float(row.get("duration") or 0.0)
    missed = int(row.get("missed_bytes") or 0)
    history = str(row.get("history") or "")
    return FlowRecord(
        community_id=c.community_id or cid(c.orig[0], c.orig[1], c.resp[0], c.resp[1], c.transport),
        transport=c.transport, src=c.orig[0], sport=c.orig[1], dst=c.resp[0], dport=c.resp[1],
        direction=direction(home, c.orig[0], c.resp[0], c.local),
        start=c.ts, end=c.ts + duration,
        packets=(int(row.get("orig_pkts") or 0), int(row.get("resp_pkts") or 0)),
        bytes=(int(row.get("orig_bytes") or 0), int(row.get("resp_bytes") or 0)),
        gaps=1 if missed else 0, gap_bytes=missed, overlaps=0, overlap_conflicts=0,
        end_reason=f"zeek {row.get('conn_state') or '-'}",
        mid_stream=c.transport == "tcp" and not history.startswith("S"),
        depth_hit=False, sni=None, source=log.path,
    )  # fmt: skip


def _with_ref(app: AppMeta, ref: SensorRef) -> AppMeta:
    return replace(app, sensor=ref)


__all__ = ["EXTRACT_NAME", "ZeekBridge"]
