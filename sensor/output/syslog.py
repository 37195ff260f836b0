"""Findings, host findings and incidents to a SIEM over syslog: RFC 5424 messages over UDP, TCP or TLS.

`--syslog udp://host:514`, `tcp://host:601` or `tls://host:6514` (RFC 5425; the server certificate is
checked against the system CAs or `--syslog-ca FILE`). Stream transports frame each message by
octet counting (RFC 6587 §3.4.1, which RFC 5425 mandates). The payload is the ECS JSON record or
a LEEF 2.0 event (QRadar's native format; deploy/qradar/ maps it). A message that cannot be sent
is counted and logged once; the run goes on (the store and JSON lines keep everything).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import ssl
from typing import Any, ClassVar
from urllib.parse import urlsplit

from loguru import logger

from sensor.errors import InputError
from sensor.model import Finding, HostFinding, Incident
from sensor.output.base import sinks

FACILITY = 16  # local0
SEVERITY = {"incident": 2, "alert": 4, "event": 6}  # critical, warning, informational
MAX_UDP = 65_000  # an IPv4 datagram's payload, less headers
LEEF_DELIM = "^"
VERSION = "1"


def _sd_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424(record: dict[str, Any], payload: str, hostname: str, msgid: str, severity: int) -> bytes:
    """One RFC 5424 message: header, a structured-data element with the ids, then the payload (BOM + UTF-8)."""
    ts = record.get("@timestamp") or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ident = record.get("event", {}).get("id", "-")
    sd = f'[stagewatch@32473 id="{_sd_escape(str(ident))}" kind="{_sd_escape(str(record["event"]["kind"]))}"]'
    head = f"<{FACILITY * 8 + severity}>1 {ts} {hostname or '-'} stagewatch - {msgid} {sd} "
    return head.encode("utf-8") + b"\xef\xbb\xbf" + payload.encode("utf-8")


def _leef_value(v: object) -> str:
    return str(v).replace(LEEF_DELIM, " ").replace("\n", " ").replace("\r", " ")


def leef(record: dict[str, Any]) -> str:
    """A LEEF 2.0 event of a record: QRadar's normalized keys first, stagewatch's own after them."""
    ev = record.get("event", {})
    f = record.get("file", {})
    sw = record.get("stagewatch", {})
    src, dst = record.get("source", {}), record.get("destination", {})
    event_id = sw.get("format") and f"member_{sw['format']}" or ev.get("dataset", "stagewatch").split(".")[-1]
    attrs: dict[str, object] = {
        "devTime": record.get("@timestamp"),
        "devTimeFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSX",
        "cat": ev.get("kind"),
        "sev": max(1, min(10, round(int(ev.get("severity", ev.get("risk_score", 10)) or 10) / 10))),
        "src": src.get("ip"),
        "srcPort": src.get("port"),
        "dst": dst.get("ip"),
        "dstPort": dst.get("port"),
        "proto": record.get("network", {}).get("transport"),
        "usrName": record.get("user", {}).get("name"),
        "identHostName": record.get("host", {}).get("name"),
        "fileName": f.get("name") or f.get("path"),
        "fileHash": f.get("hash", {}).get("sha256"),
        "fileSize": f.get("size"),
        "url": record.get("url", {}).get("original"),
        "eventId": ev.get("id"),
        "technique": ",".join(record.get("threat", {}).get("technique", {}).get("id", [])),
        "format": sw.get("format"),
        "direction": record.get("network", {}).get("direction"),
        "encoding": ",".join(sw.get("encoding", [])) or None,
        "label": sw.get("label"),
        "process": record.get("process", {}).get("executable"),
    }
    body = LEEF_DELIM.join(f"{k}={_leef_value(v)}" for k, v in attrs.items() if v not in (None, ""))
    return f"LEEF:2.0|stagewatch|stagewatch|{VERSION}|{_leef_value(event_id)}|{LEEF_DELIM}|{body}"


@sinks.register("syslog")
class SyslogSink:
    """Sends each finding, host finding and incident as one syslog message."""

    name: ClassVar[str] = "syslog"
    kinds: tuple[type, ...] = (Finding, HostFinding, Incident)  # flows and objects stay in the store and JSON lines

    def __init__(self, url: str, payload: str = "json", hostname: str = "", ca: str | None = None) -> None:
        if payload not in ("json", "leef"):
            raise ValueError(f"--syslog-format {payload!r}: json or leef")
        parts = urlsplit(url)
        if parts.scheme not in ("udp", "tcp", "tls") or not parts.hostname:
            raise ValueError(f"--syslog {url!r}: expected udp://HOST[:PORT], tcp://HOST[:PORT] or tls://HOST[:PORT]")
        self.url, self.scheme, self.payload, self.hostname = url, parts.scheme, payload, hostname
        self.addr = (parts.hostname, parts.port or {"udp": 514, "tcp": 601, "tls": 6514}[parts.scheme])
        self.ca = ca
        self.sent = self.failed = 0
        self.sock: socket.socket | ssl.SSLSocket | None = None
        self._connect()

    def _connect(self) -> None:
        try:
            if self.scheme == "udp":
                self.sock = socket.socket(socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET, socket.SOCK_DGRAM)
                self.sock.connect(self.addr)
                return
            raw = socket.create_connection(self.addr, timeout=10)
            if self.scheme == "tls":
                ctx = ssl.create_default_context(cafile=self.ca)
                self.sock = ctx.wrap_socket(raw, server_hostname=self.addr[0])
            else:
                self.sock = raw
        except (OSError, ssl.SSLError) as e:
            raise InputError(self.url, f"cannot reach the syslog server: {e}") from None

    def write(self, item: object, record: dict[str, Any]) -> None:
        if isinstance(item, Incident):
            kind = "incident"
        elif isinstance(item, Finding | HostFinding):
            kind = str(record["event"]["kind"])
        else:
            return  # flows and objects stay in the store and JSON lines
        text = leef(record) if self.payload == "leef" else json.dumps(record, separators=(",", ":"))
        msgid = record.get("event", {}).get("dataset", "stagewatch.finding").split(".")[-1]
        msg = rfc5424(record, text, self.hostname, msgid, SEVERITY[kind])
        try:
            if self.scheme == "udp":
                if len(msg) > MAX_UDP:
                    raise OSError(f"message of {len(msg)} bytes does not fit a datagram (use tcp or tls)")
                self.sock.send(msg)  # type: ignore[union-attr]
            else:
                self.sock.sendall(b"%d " % len(msg) + msg)  # type: ignore[union-attr]
            self.sent += 1
        except OSError as e:
            self.failed += 1
            if self.failed == 1:
                logger.error("{}: syslog message not sent: {} (the store and JSON lines keep it)", self.url, e)

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if self.scheme != "udp":
            # Unread bytes at close make the kernel send RST, and an RST makes the server drop what
            # it has not read yet: TLS 1.3 servers send session tickets nobody asked for. Read them.
            sock.setblocking(False)
            try:
                while sock.recv(65536):
                    pass
            except (ssl.SSLWantReadError, ssl.SSLError, BlockingIOError, OSError):
                pass
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        sock.close()


__all__ = ["SyslogSink", "leef", "rfc5424"]
