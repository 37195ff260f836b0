#!/usr/bin/env python3
"""Builds the demo's staged tree: what library-based staging leaves on two hosts, plus benign look-alikes.

    python samples/make_staged.py samples/staged

Everything is written by the real libraries (zlib, gzip, bz2, lzma, zipfile, tarfile, zstandard,
lz4, py7zr) with fixed seeds and timestamps, so the tree is the same on every run.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import os
import random
import shutil
import struct
import sys
import tarfile
import zipfile
import zlib

import lz4.frame
import py7zr
import zstandard

MTIME = 1_763_800_000  # 2025-11-22, fixed so the demo's output does not change


def text(r: random.Random, n: int) -> bytes:
    names = ["alice", "bob", "carol", "dave", "erin", "frank"]
    lines = []
    while sum(map(len, lines)) < n:
        u = r.choice(names)
        lines.append(f"{r.randint(1000, 9999)},{u},{u}@corp.example,{r.randint(10, 99)}-{r.randint(1000, 9999)}\n")
    return "".join(lines).encode()[:n]


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (MTIME, MTIME))


def dotnet_gzip(data: bytes) -> bytes:
    """What .NET Framework's GZipStream writes: MTIME 0, XFL 4, OS 0, then raw deflate."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x00" + body + struct.pack("<II", zlib.crc32(data), len(data))


def png(width: int, height: int) -> bytes:
    """A real PNG: its IDAT is a zlib stream, so it is a container, not staging."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + bytes((x * 7 + y) % 256 for x in range(width * 3)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def main(out: str) -> int:
    r = random.Random(2026)
    if os.path.isdir(out):
        shutil.rmtree(out)
    passwd = b"root:x:0:0:root:/root:/bin/bash\n" + b"".join(
        b"user%d:x:%d:%d::/home/u:/bin/sh\n" % (i, i, i) for i in range(1000, 1200)
    )
    hosts = b"127.0.0.1 localhost\n" + text(r, 20000)
    customers = text(r, 200_000)

    # WS-01: Windows host, PowerShell/.NET and Python staging under AppData and ProgramData
    ws = os.path.join(out, "WS-01")
    temp = os.path.join(ws, "Users", "bob", "AppData", "Local", "Temp")
    write(os.path.join(temp, "report.dat"), dotnet_gzip(customers))  # gzip hidden behind .dat
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("etc/passwd", passwd)
        zf.writestr("Login Data", text(r, 30000))
    write(os.path.join(temp, "upd_4411.tmp"), z.getvalue())
    blob = base64.b64encode(zlib.compress(customers, 9)).decode()
    write(os.path.join(temp, "beacon.json"), f'{{"id": 4411, "ok": true, "data": "{blob}"}}\n'.encode())
    s = io.BytesIO()
    with py7zr.SevenZipFile(s, "w", password="infected", header_encryption=True) as sz:
        sz.writestr(customers, "customers.csv")
    write(os.path.join(ws, "ProgramData", "cache", "blob.bin"), s.getvalue())
    write(
        os.path.join(ws, "Users", "Public", "Libraries", "k.zst"),
        zstandard.ZstdCompressor(write_checksum=True).compress(hosts),
    )
    # benign look-alikes on the same host: a picture and a spreadsheet are compressed inside
    write(os.path.join(ws, "Users", "bob", "Pictures", "chart.png"), png(120, 80))
    x = io.BytesIO()
    with zipfile.ZipFile(x, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        zf.writestr("xl/workbook.xml", "<workbook/>" + "<row/>" * 500)
    write(os.path.join(ws, "Users", "bob", "Documents", "budget.xlsx"), x.getvalue())

    # srv-db: Linux host, Python tarfile/bz2/lzma/lz4 in /tmp, /dev/shm and /var/tmp
    srv = os.path.join(out, "srv-db")
    t = io.BytesIO()
    with tarfile.open(fileobj=t, mode="w:gz") as tf:
        for name, data in (("etc/shadow", passwd), ("root/.ssh/id_rsa", text(r, 3000)), ("etc/hosts", hosts)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), MTIME
            tf.addfile(info, io.BytesIO(data))
    write(os.path.join(srv, "tmp", ".cache-3f2a"), t.getvalue())
    write(os.path.join(srv, "dev", "shm", "x.bin"), r.randbytes(4000) + bz2.compress(customers) + r.randbytes(3000))
    write(os.path.join(srv, "var", "tmp", "dump.part"), lzma.compress(customers, format=lzma.FORMAT_ALONE)[:20000])
    write(os.path.join(srv, "var", "tmp", "q.lz4"), lz4.frame.compress(customers))
    write(os.path.join(srv, "var", "tmp", "notes.txt.xz"), lzma.compress(hosts))
    # routine: a rotated log, and random bytes full of nothing
    write(os.path.join(srv, "var", "log", "syslog.2.gz"), gzip.compress(text(r, 50000), mtime=MTIME))
    write(os.path.join(srv, "home", "dba", "noise.bin"), r.randbytes(1 << 20))
    print(f"staged tree written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "samples/staged"))
