"""Seed corpora for the fuzz targets, made from what the project already has: the sample captures
(pcaps/make_samples.py), the demo's staged files and host telemetry (samples/), the real captures and logs in
../shared/ when present, the bundled config and rules, and members made here with the standard library.

    python fuzz/seeds.py OUT_DIR            (OUT_DIR/<target>/<seed>, deterministic)

Seeds are kept small (a few KiB each): libFuzzer mutates short inputs far faster, and each target's own
structure (a record, a frame, a segment list) is what needs covering, not volume.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

CUT = 4096
TEXT = b"id,name,amount\n" + b"".join(b"%d,customer %d,%d.00\n" % (i, i, i * 37 % 1000) for i in range(120))


def _captures(tmp: Path) -> list[Path]:
    subprocess.run([sys.executable, str(ROOT / "pcaps" / "make_samples.py"), str(tmp)], check=True, capture_output=True)
    found = sorted(tmp.glob("*.pcap"))
    real = SHARED / "pcaps" / "real"
    if real.is_dir():
        found += sorted(p for p in real.iterdir() if p.suffix in (".pcap", ".cap"))[:6]
    return found


def _pcapng_of(frames: list[bytes]) -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    out = block(0x0A0D0D0A, b"\x4d\x3c\x2b\x1a" + struct.pack("<HHq", 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 1) + b"\x06\x00\x00\x00" + b"\x00" * 4)
    for i, f in enumerate(frames):
        out += block(6, struct.pack("<IIIII", 0, 0, 1000 + i, len(f), len(f)) + f)
    out += block(3, struct.pack("<I", len(frames[0])) + frames[0])
    return out


def _ring(frames: list[bytes]) -> bytes:
    body = bytearray()
    for i, data in enumerate(frames):
        mac = 70
        size = (mac + len(data) + 15) & ~15
        nxt = 0 if i == len(frames) - 1 else size
        status = 0x11 if i % 2 else 0
        hdr = struct.pack("=IIIIIIHHIIH", nxt, 1000 + i, 5000, len(data), len(data), status, mac, mac + 14, 0, 7, 0)
        frame = bytearray(size)
        frame[: len(hdr)] = hdr
        frame[mac : mac + len(data)] = data
        body += frame
    return struct.pack("=IIIII", 3, 0, 1, len(frames), 48) + b"\x00" * 28 + bytes(body)


def _dns_messages(pkts: list) -> bytes:
    """Scapy DNS packets in fuzz/targets.py `fuzz_dns` form: per message a sender byte and a two-byte length."""
    from scapy.layers.dns import DNS

    out = bytearray()
    for i, p in enumerate(pkts):
        msg = bytes(p[DNS])
        out += bytes([(i % 3) << 3 | 4]) + len(msg).to_bytes(2, "big") + msg
    return bytes(out)


def _ops(sends: list[tuple[int, bytes]]) -> bytes:
    """A conversation in fuzz/targets.py `segments_of` form: per segment direction, flags, offset, length."""
    out = bytearray()
    for d, data in sends:
        for i in range(0, len(data), 1000):
            piece = data[i : i + 1000]
            out += bytes([d | 4, 0x18]) + struct.pack(">h", 0) + bytes([len(piece) & 0xFF, len(piece) >> 8]) + piece
    return bytes(out)


def _members() -> dict[str, bytes]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export/rows.csv", TEXT)
        z.writestr("r\u00e9sum\u00e9.txt", b"x" * 300)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as z:
        z.writestr("inner.zip", buf.getvalue())  # a zip in a zip: its entries are listed too
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:bz2") as t:
        info = tarfile.TarInfo("stage/rows.csv")
        info.size = len(TEXT)
        t.addfile(info, io.BytesIO(TEXT))
    return {
        "gzip": gzip.compress(TEXT, mtime=0),
        "zlib": zlib.compress(TEXT),
        "deflate": zlib.compress(TEXT)[2:-4],
        "bzip2": bz2.compress(TEXT),
        "xz": lzma.compress(TEXT),
        "lzma": lzma.compress(TEXT, format=lzma.FORMAT_ALONE),
        "zip": buf.getvalue(),
        "zip-in-zip": outer.getvalue(),
        "tar": tar.getvalue(),
    }


def _http(member: bytes) -> list[tuple[int, bytes]]:
    from tests import appbuild as ab

    ctype, body = ab.multipart([ab.Part("file", member, filename="rows.csv.gz")])
    up = ab.http_request("POST", "/upload", "files.example.net", body, [("Content-Type", ctype)])
    js = ab.http_request("POST", "/api", "api.example.net", ab.json_body({"d": base64.b64encode(member).decode()}),
                         [("Content-Type", "application/json")])  # fmt: skip
    down = ab.http_response(200, ab.gzip_body(TEXT), [("Content-Encoding", "gzip")], chunked=True, chunk_size=300)
    return [(0, up), (1, ab.http_response(200, b"ok")), (0, js), (1, down)]


def _smtp(member: bytes) -> list[tuple[int, bytes]]:
    from tests import appbuild as ab

    msg = ab.smtp_message(
        "a@example.org", ["b@example.net"], "rows", "see attached", [ab.Attachment("rows.xz", member)]
    )
    return [(1, b"220 mx ESMTP\r\n"), (0, b"EHLO ws\r\n"), (1, b"250 mx\r\n"), (0, b"MAIL FROM:<a@example.org>\r\n"),
            (1, b"250 ok\r\n"), (0, b"RCPT TO:<b@example.net>\r\n"), (1, b"250 ok\r\n"), (0, b"DATA\r\n"),
            (1, b"354 go\r\n"), (0, msg + b"\r\n.\r\n"), (1, b"250 queued\r\n"), (0, b"QUIT\r\n")]  # fmt: skip


def _ftp() -> list[tuple[int, bytes]]:
    return [(1, b"220 ftp\r\n"), (0, b"USER u\r\n"), (1, b"331 pw\r\n"), (0, b"PASS p\r\n"), (1, b"230 in\r\n"),
            (0, b"PASV\r\n"), (1, b"227 Entering Passive Mode (10,0,0,80,195,80)\r\n"),
            (0, b"STOR stage_df00.tar.bz2\r\n"), (1, b"150 ok\r\n"), (1, b"226 done\r\n"),
            (0, b"EPRT |1|10.0.0.5|50000|\r\n"), (1, b"200 ok\r\n"), (0, b"RETR x.7z\r\n")]  # fmt: skip


def seeds() -> dict[str, dict[str, bytes]]:
    """Every target's seeds, by name."""
    from sensor.capture.pcapfile import read_packets
    from sensor.stats import RunStats

    targets = (
        "pcap", "pcapng", "decode", "ring", "flow", "http", "framing", "websocket", "smtp", "imap", "pop3", "ftp",
        "dns", "smb", "identity", "detect", "verify", "content",
    )  # fmt: skip
    out: dict[str, dict[str, bytes]] = {t: {} for t in (*targets, "hostevents", "config")}
    members = _members()
    with tempfile.TemporaryDirectory() as tmp:
        frames: list[bytes] = []
        for i, cap in enumerate(_captures(Path(tmp))):
            raw = cap.read_bytes()
            if raw[:4] == b"\xd4\xc3\xb2\xa1":
                out["pcap"][f"{i:02d}-{cap.stem}"] = b"\x00" + raw[24 : 24 + CUT]
            pkts = list(read_packets(str(cap), RunStats()))[:40]
            frames += [p.data for p in pkts if p.linktype == 1][:12]
            for j, p in enumerate(pkts[:6]):
                lt = {1: 0, 0: 1, 101: 2, 113: 3, 228: 4, 229: 5}.get(p.linktype, 0)
                out["decode"][f"{i:02d}-{j}"] = bytes([lt]) + p.data[:CUT]
    out["pcapng"]["frames"] = _pcapng_of(frames[:10])
    out["ring"]["frames"] = _ring(frames[:8])
    out["flow"]["conversation"] = _ops(_http(members["gzip"]))[:CUT]
    out["flow"]["reordered"] = (
        bytes([0, 0x02, 0, 0, 0, 0, 1, 0x12, 0, 0, 0, 0]) + bytes([2, 0x18, 0, 10, 5, 0]) + b"later"
    )
    out["http"]["upload"] = _ops(_http(members["gzip"]))
    from tests.test_http_framing import HEADS  # the framing tricks the tests send

    for i, (_, lines, body, _, _) in enumerate(HEADS):
        request = b"POST /up/stage.gz HTTP/1.1\r\n" + lines + body[:600]
        out["framing"][f"{i:02d}-request"] = request
        out["framing"][f"{i:02d}-response"] = b"HTTP/1.0 200 OK\r\n" + lines + body[:600]
        out["http"][f"odd-{i:02d}"] = _ops([(0, request), (1, b"HTTP/1.1 200\nContent-Length: 2\n\nok")])
    out["framing"]["codings"] = b'HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Encoding: x-foo, "br"\r\n\r\n'
    from tests import wsbuild as ws

    z = ws.Compressor()
    frames = ws.frame(2, z.message(members["gzip"]), rsv1=True, mask=1) + ws.frame(9, b"p", mask=2)
    frames += ws.frame(1, b'{"a": 1', fin=False, mask=3) + ws.frame(0, b"}", mask=4) + ws.frame(8, b"", mask=5)
    out["websocket"]["deflate"] = bytes([0b0111]) + frames
    out["websocket"]["plain"] = bytes([0b1000]) + ws.frame(2, members["zip"]) + ws.frame(1, b"hi")
    upgrade = [(0, ws.upgrade_request(deflate=True)), (1, ws.upgrade_response("permessage-deflate"))]
    out["http"]["websocket"] = _ops([*upgrade, (0, frames), (1, ws.frame(2, members["xz"]))])
    out["smtp"]["attachment"] = _ops(_smtp(members["xz"]))
    from tests import appbuild as ab

    attached = [ab.Attachment("rows.gz", members["gzip"])]
    mail = ab.smtp_message("a@example.org", ["b@example.net"], "rows", "see", attached)
    out["imap"]["append-fetch"] = _ops([
        (1, b"* OK ready\r\n"), (0, b"a1 LOGIN {1}\r\n"), (1, b"+ OK\r\n"), (0, b"u p\r\n"), (1, b"a1 OK\r\n"),
        (0, b"a2 APPEND Drafts {%d+}\r\n" % len(mail) + mail + b"\r\n"), (1, b"a2 OK\r\n"),
        (0, b"a3 FETCH 1 (BODY.PEEK[])\r\n"),
        (1, b"* 1 FETCH (BODY[] {%d}\r\n" % len(mail) + mail + b")\r\na3 OK\r\n"), (0, b"a4 STARTTLS\r\n"),
    ])  # fmt: skip
    out["pop3"]["retr"] = _ops([
        (1, b"+OK ready\r\n"), (0, b"USER u\r\nPASS p\r\nCAPA\r\nRETR 1\r\n"),
        (1, b"+OK\r\n+OK\r\n+OK\r\nTOP\r\n.\r\n+OK\r\n" + ab.dot_stuff(mail)), (0, b"STLS\r\n"), (1, b"+OK\r\n"),
    ])  # fmt: skip
    out["ftp"]["control"] = _ops(_ftp())
    from tests import dnsbuild as db

    for name, tunnel in (
        ("hex-first", db.Tunnel(members["gzip"][:600])),
        ("base32-hexlast", db.Tunnel(members["zlib"][:600], encoding="base32", sequence="hexlast")),
        ("base64-none", db.Tunnel(members["xz"][:600], encoding="base64", sequence=None)),
    ):
        out["dns"][name] = _dns_messages(db.packets(tunnel, retries=0.1, reorder=0.1, answers=True))
    from tests import smbbuild as sb

    fid = sb.file_id(1)
    nb = sb.nbss
    session = [(0, nb(sb.negotiate_smb1())), (1, nb(sb.negotiate_response())), (0, nb(sb.tree_connect(2, "\\\\s\\d"))),
               (1, nb(sb.tree_connect_response(2, 5)))]  # fmt: skip
    gz = members["gzip"]
    out["smb"]["put"] = _ops([*session, (0, nb(sb.create(3, "a\\b.gz", 5))), (1, nb(sb.create_response(3, fid, 5))),
                              (0, nb(sb.write(4, fid, 100, gz[100:], 5))), (0, nb(sb.write(5, fid, 0, gz[:100], 5))),
                              (0, nb(sb.close(6, fid, 5))), (1, nb(sb.close_response(6, 5)))])  # fmt: skip
    related = sb.compound(sb.create(7, "c.zip", 5), sb.write(8, sb.ALL_ONES, 0, members["zip"], 5, sb.RELATED),
                          sb.close(9, sb.ALL_ONES, 5, sb.RELATED))  # fmt: skip
    answers = sb.compound(sb.create_response(7, fid, 5), sb.write_response(8, 1, 5, sb.RELATED),
                          sb.close_response(9, 5, sb.RELATED))  # fmt: skip
    reads = [(0, nb(sb.read(10, fid, 0, 99, 5))), (1, nb(sb.read_response(10, members["xz"], 5))),
             (0, nb(sb.transform(40)))]  # fmt: skip
    out["smb"]["compound-read"] = _ops([*session, (0, nb(related)), (1, nb(answers)), *reads])
    from scapy.layers.dns import DNS
    from scapy.layers.inet import UDP

    from tests import identitybuild as ib

    dhcp = ib.dhcp_exchange("02:00:00:00:00:01", "10.1.2.3", "ws-1", 1.0)
    out["identity"]["dhcp-request"] = b"\x00" + bytes(dhcp[0][UDP].payload)
    out["identity"]["dhcp-ack"] = b"\x01" + bytes(dhcp[1][UDP].payload)
    out["identity"]["nbns"] = b"\x02" + bytes(ib.nbns_registration("WS-1", "10.1.2.3", 1.0)[UDP].payload)
    out["identity"]["mdns"] = b"\x03" + bytes(ib.name_answer("a.local", "10.1.2.3", 1.0, 5353)[DNS])
    out["identity"]["llmnr"] = b"\x04" + bytes(ib.name_answer("ws-2", "10.1.2.4", 1.0, 5355)[DNS])
    out["identity"]["as-req"] = b"\x05" + ib.as_req("WS-3$")
    out["identity"]["ntlm"] = b"\x05" + ib.ntlm_authenticate("WS-4")[12:]
    out["dns"]["txt-download"] = _dns_messages(db.txt_download(members["gzip"][:900], "10.0.0.1", "198.51.100.53"))
    for name, data in members.items():
        out["detect"][name] = b"junk" * 5 + data
        out["detect"][f"{name}-b64"] = b'{"v":"' + base64.b64encode(data) + b'"}'
    out["detect"]["hex"] = members["zlib"].hex().encode()
    from sensor.detect.verifiers import verifiers

    formats = sorted(verifiers.names())
    for name, data in members.items():
        fmt = name.split("-")[0]
        if fmt in formats:
            out["verify"][name] = bytes([formats.index(fmt)]) + data
    out["content"]["b64"] = bytes([0, 0]) + b"x=" + base64.b64encode(members["gzip"])
    out["content"]["hex"] = bytes([1, 0]) + members["zlib"].hex().encode()
    out["content"]["multipart"] = (
        bytes([2, 0]) + b"--b\r\nContent-Disposition: form-data; name=f; filename=a.gz\r\n\r\nx\r\n--b--"
    )
    out["content"]["form"] = bytes([3, 0]) + b"a=1&b=" + base64.b64encode(members["zip"])
    out["content"]["json"] = bytes([4, 0]) + b'{"a":[1,{"b":"' + base64.b64encode(members["bzip2"]) + b'"}]}'
    out["content"]["coding"] = bytes([5, 0]) + members["gzip"]
    from sensor.hostevents.base import parsers

    names = sorted(parsers.names())
    telemetry = SHARED / "hostevents" / "real"
    for i, name in enumerate(names):
        sample = {
            "auditd": b'type=EXECVE msg=audit(1700000000.123:42): argc=3 a0="python3" a1="-c" a2=696D706F7274\n'
            b'type=PATH msg=audit(1700000000.123:42): item=0 name="/tmp/s.tar.bz2" nametype=CREATE\n',
            "qradar": b"startTime,sourceIP,Event Name,Username\n1700000000000,10.0.0.5,Process Create,bob\n",
        }.get(name, b'{"EventID": 1, "Image": "C:\\\\python.exe", "CommandLine": "python -c zipfile"}\n')
        out["hostevents"][name] = bytes([i]) + sample
    if telemetry.is_dir():
        for j, f in enumerate(sorted(telemetry.glob("*.evtx"))[:3]):
            out["hostevents"][f"real-{j}"] = bytes([names.index("evtx")]) + f.read_bytes()[: 64 * 1024]
    out["config"]["toml"] = b"\x00" + (ROOT / "deploy" / "stagewatch.toml").read_bytes()
    out["config"]["tuning"] = b"\x01" + (ROOT / "signatures" / "suppress.example.yaml").read_bytes()
    sigma = sorted((ROOT / "signatures" / "host").glob("*.yml"))
    if sigma:
        out["config"]["sigma"] = b"\x02" + sigma[0].read_bytes()
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    for target, items in seeds().items():
        folder = Path(sys.argv[1]) / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in items.items():
            (folder / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
