"""The syslog sink against real listening sockets on loopback (UDP, TCP, TLS with a throwaway CA): every
message is RFC 5424, and parses back into the finding it came from (JSON payload) or its key fields (LEEF)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sensor.cli import main as cli_main
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[1]
HEADER = re.compile(
    rb"<(?P<pri>\d+)>1 (?P<ts>\S+) (?P<host>\S+) stagewatch - (?P<msgid>\S+) "
    rb'\[stagewatch@32473 id="(?P<id>[^"]+)" kind="(?P<kind>[^"]+)"\] \xef\xbb\xbf(?P<msg>.*)',
    re.S,
)


class Listener:
    """A syslog server on 127.0.0.1: collects raw messages (stream ones unframed by octet count)."""

    def __init__(self, scheme: str, cert: tuple[Path, Path] | None = None) -> None:
        self.scheme, self.messages = scheme, []
        kind = socket.SOCK_DGRAM if scheme == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if scheme == "tls":
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*cert)  # type: ignore[misc]
        if kind == socket.SOCK_STREAM:
            self.sock.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        if self.scheme == "udp":
            self.sock.settimeout(30)
            while True:
                try:
                    self.messages.append(self.sock.recv(70_000))
                except (TimeoutError, OSError):
                    return
        conn, _ = self.sock.accept()
        if self.ctx is not None:
            conn = self.ctx.wrap_socket(conn, server_side=True)
        buf = b""
        while chunk := conn.recv(65536):
            buf += chunk
            while b" " in buf:
                n, _, rest = buf.partition(b" ")
                if len(rest) < int(n):
                    break
                self.messages.append(rest[: int(n)])
                buf = rest[int(n) :]
        conn.close()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}" if self.scheme != "tls" else f"tls://localhost:{self.port}"

    def wait(self, n: int) -> list[bytes]:
        import time

        end = time.monotonic() + 15
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.05)
        return self.messages


def certificate(tmp: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        need("openssl is not installed (needed to make the test server's certificate)")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def sample(tmp: Path) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "pcaps" / "make_samples.py"), str(tmp / "s")], check=True, capture_output=True
    )
    return tmp / "s"


@pytest.mark.parametrize("scheme", ["udp", "tcp", "tls"])
def test_every_finding_arrives_and_parses_back(tmp_path, rule_cache, scheme):
    cert = certificate(tmp_path) if scheme == "tls" else None
    server = Listener(scheme, cert)
    out = tmp_path / "f.jsonl"
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "sensor-7"\n')
    args = ["-q", "scan", str(sample(tmp_path)), "--no-db", "--jsonl", str(out), "--syslog", server.url]
    if cert:
        args += ["--syslog-ca", str(cert[0])]
    assert cli_main([*args, "--config", str(cfg), "--home-net", "10.0.0.0/8,2001:db8::/48"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) >= 5
    got = server.wait(len(records))
    assert len(got) == len(records)
    by_id = {}
    for raw in got:
        m = HEADER.fullmatch(raw)
        assert m, raw[:200]
        assert m["host"] == b"sensor-7" and int(m["pri"]) // 8 == 16
        assert int(m["pri"]) % 8 == (4 if m["kind"] == b"alert" else 6)
        by_id[m["id"].decode()] = json.loads(m["msg"])
    assert by_id == {r["event"]["id"]: r for r in records}  # each message is its finding, whole


def test_leef_payload_carries_the_key_fields(tmp_path, rule_cache):
    server = Listener("tcp")
    out = tmp_path / "f.jsonl"
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "sensor-7"\n')
    args = ["-q", "scan", str(sample(tmp_path)), "--no-db", "--jsonl", str(out), "--syslog", server.url]
    assert cli_main([*args, "--syslog-format", "leef", "--config", str(cfg), "--home-net", "10.0.0.0/8"]) == 0
    records = {r["event"]["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    for raw in server.wait(len(records)):
        m = HEADER.fullmatch(raw)
        assert m
        head, _, body = m["msg"].decode().partition("|^|")
        assert head.startswith("LEEF:2.0|stagewatch|stagewatch|1|member_")
        kv = dict(pair.split("=", 1) for pair in body.split("^"))
        r = records[kv["eventId"]]
        assert kv["fileHash"] == r["file"]["hash"]["sha256"] and int(kv["fileSize"]) == r["file"]["size"]
        if "source" in r:
            assert (kv["src"], int(kv["srcPort"])) == (r["source"]["ip"], r["source"]["port"])
        assert kv["format"] == r["stagewatch"]["format"] and kv["cat"] == r["event"]["kind"]


def test_an_unreachable_server_is_one_line(tmp_path, capfd):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    assert cli_main(["scan", str(tmp_path), "--no-db", "--syslog", f"tcp://127.0.0.1:{port}"]) == 1
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "cannot reach the syslog server" in err[0]
