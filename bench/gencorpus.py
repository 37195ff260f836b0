"""Deterministic test corpora for bench_detect.py: a mixed folder with planted members, or random + magics.

Mixed mode (default) writes OUT/files/NNNN-KIND.EXT and OUT/truth.json:

- text files (CSV, logs, JSON lines), random-byte files and files alternating both, with compressed
  members written by the real libraries planted at random offsets: gzip (plain, with FNAME,
  mtime=0), zlib levels 1/6/9, bz2, lzma xz and alone, zstandard (with and without checksum),
  lz4.frame (with and without content checksum), snappy framed (text files only: the framing format
  has no end marker, so random bytes after it could be read as skippable chunks), zipfile,
  tarfile w:gz and plain tarfile;
- base64 runs of compressed members inside the text files, in five contexts (JSON value, MIME
  body, `key=value` log field, data: URI, bare line);
- whole-file members (the file is one member), and text or random files holding no member.

truth.json lists every planted member: file, offset (of the member; for base64, of the run, with
"encoding": "base64"), format, length and sha256 of the member's bytes, and how it was written.

Random mode (`--random-mb [N]`) writes OUT/files/random.bin: N MiB of random bytes with thousands of
planted bare headers (magic numbers, with valid header CRCs where the format has one) followed by
random bytes. None of them is a real member; truth.json lists them under "plants".

The output depends only on (mode, seed, size) and on the zlib, bz2, liblzma, zstd and lz4 builds.
Data goes to --out only.
"""

from __future__ import annotations

import argparse
import base64
import bz2
import gzip
import hashlib
import io
import json
import lzma
import math
import os
import random
import struct
import sys
import tarfile
import time
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import lz4.frame
import snappy
import zstandard

MiB = 1 << 20
KiB = 1 << 10
MTIME = 1_790_000_000  # fixed timestamps: 2026-09-21
# fmt: off
FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter"]
LAST = ["smith", "jones", "taylor", "brown", "wilson", "evans", "thomas", "johnson", "roberts", "walker",
    "wright", "robinson", "thompson", "white", "hughes"]
CITIES = ["Berlin", "Paris", "Lyon", "Madrid", "Porto", "Milan", "Vienna", "Prague", "Krakow", "Oslo",
    "Dublin", "Leeds", "Ghent", "Basel", "Turin"]
DOMAINS = ["example.com", "corp.example.org", "mail.example.net", "acme.test", "contoso.test"]
SERVICES = ["auth", "api", "billing", "export", "sync", "backup", "gateway", "worker", "scheduler"]
# fmt: on
MESSAGES = [
    "request completed",
    "cache miss for key",
    "retrying upstream call",
    "user session refreshed",
    "export job queued",
    "slow query detected",
    "token validated",
    "connection reset by peer",
    "wrote batch to storage",
]
LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
TEXT_KINDS = ("csv", "log", "jsonl")
CSV_HEADER = "id,first_name,last_name,email,phone,city,amount,date\n"

# (format reported by the detector, writer, weight)
WRITERS = [
    ("gzip", "gzip.compress", 2.0),
    ("gzip", "GzipFile+FNAME", 1.5),
    ("gzip", "gzip.compress(mtime=0)", 1.0),
    ("zlib", "zlib.compress(1)", 1.0),
    ("zlib", "zlib.compress(6)", 1.5),
    ("zlib", "zlib.compress(9)", 1.0),
    ("bzip2", "bz2.compress", 1.0),
    ("xz", "lzma.compress(FORMAT_XZ)", 1.0),
    ("lzma", "lzma.compress(FORMAT_ALONE)", 1.0),
    ("zstd", "zstandard(level=3)", 1.0),
    ("zstd", "zstandard(level=3,checksum)", 0.75),
    ("zstd", "zstandard(level=19)", 0.25),
    ("lz4", "lz4.frame.compress", 1.0),
    ("lz4", "lz4.frame.compress(content_checksum)", 0.75),
    ("snappy", "snappy.StreamCompressor", 0.5),
    ("zip", "zipfile(deflate)", 1.5),
    ("zip", "zipfile(stored+deflate)", 0.5),
    ("gzip", "tarfile(w:gz)", 1.0),
    ("tar", "tarfile(w)", 0.5),
]
B64_FORMATS = {"gzip", "zlib", "bzip2", "xz", "lzma", "zstd", "lz4", "zip"}
B64_CONTEXTS = ("json", "mime", "kv", "data_uri", "bare")


def xxh32(data: bytes, seed: int = 0) -> int:
    """XXH32 of a short input (< 16 bytes), for the LZ4 frame header checksum."""
    assert len(data) < 16
    p1, p2, p3, p4, p5, m = 2654435761, 2246822519, 3266489917, 668265263, 374761393, 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & m

    h = (seed + p5 + len(data)) & m
    i = 0
    while i + 4 <= len(data):
        h = (h + int.from_bytes(data[i : i + 4], "little") * p3) & m
        h = (rotl(h, 17) * p4) & m
        i += 4
    while i < len(data):
        h = (h + data[i] * p5) & m
        h = (rotl(h, 11) * p1) & m
        i += 1
    h ^= h >> 15
    h = (h * p2) & m
    h ^= h >> 13
    h = (h * p3) & m
    h ^= h >> 16
    return h


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Gen:
    """All randomness comes from one seeded Random, consumed in a fixed order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pools = {k: self._pool(k, 4096) for k in TEXT_KINDS}

    # -- text ---------------------------------------------------------------------------------
    def _line(self, kind: str) -> str:
        r = self.rng
        fn, ln = r.choice(FIRST), r.choice(LAST)
        if kind == "csv":
            return (
                f"{r.randrange(10**5, 10**6)},{fn},{ln},{fn}.{ln}{r.randrange(100)}@{r.choice(DOMAINS)},"
                f"+1-{r.randrange(200, 999)}-{r.randrange(100, 999)}-{r.randrange(1000, 9999)},"
                f"{r.choice(CITIES)},{r.randrange(1, 99999) / 100:.2f},"
                f"2026-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}\n"
            )
        if kind == "log":
            return (
                f"2026-11-{r.randrange(1, 29):02d}T{r.randrange(24):02d}:{r.randrange(60):02d}:"
                f"{r.randrange(60):02d}.{r.randrange(1000):03d}Z {r.choice(LEVELS):<5} "
                f"[{r.choice(SERVICES)}] {r.choice(MESSAGES)} "
                f"user={fn} req={r.getrandbits(32):08x} latency_ms={r.randrange(1, 5000)}\n"
            )
        return (
            f'{{"ts": "2026-11-{r.randrange(1, 29):02d}T{r.randrange(24):02d}:{r.randrange(60):02d}:00Z", '
            f'"event": "{r.choice(MESSAGES)}", "user": "{fn}.{ln}", '
            f'"ip": "10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}", '
            f'"bytes": {r.randrange(100000)}, "ok": {"true" if r.random() < 0.9 else "false"}}}\n'
        )

    def _pool(self, kind: str, n: int) -> list[str]:
        return [self._line(kind) for _ in range(n)]

    def text(self, n: int, kind: str) -> bytes:
        if n <= 0:
            return b""
        pool = self.pools[kind]
        out = "".join(self.rng.choices(pool, k=n // 60 + 4))
        while len(out) < n:
            out += "".join(self.rng.choices(pool, k=64))
        return out[:n].encode()

    def randbytes(self, n: int) -> bytes:
        return b"".join(self.rng.randbytes(min(n - i, 1 << 24)) for i in range(0, n, 1 << 24))

    def loguniform(self, lo: int, hi: int) -> int:
        return int(math.exp(self.rng.uniform(math.log(lo), math.log(hi))))

    # -- members ------------------------------------------------------------------------------
    def plaintext(self, lo: int, hi: int) -> tuple[bytes, str]:
        n = self.loguniform(lo, hi)
        if self.rng.random() < 0.2:
            return self.randbytes(n), "random"
        kind = self.rng.choice(TEXT_KINDS)
        head = CSV_HEADER.encode() if kind == "csv" else b""
        return (head + self.text(n, kind))[:n], kind

    def member(self, writer: str, plain: bytes) -> bytes:
        r = self.rng
        if writer == "gzip.compress":
            return gzip.compress(plain, mtime=MTIME + r.randrange(10**6))
        if writer == "GzipFile+FNAME":
            buf = io.BytesIO()
            name = f"{r.choice(['export', 'dump', 'users', 'report'])}_{r.randrange(1000):03d}.csv"
            with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=MTIME + r.randrange(10**6)) as f:
                f.write(plain)
            return buf.getvalue()
        if writer == "gzip.compress(mtime=0)":
            return gzip.compress(plain, mtime=0)
        if writer.startswith("zlib.compress("):
            return zlib.compress(plain, int(writer[14]))
        if writer == "bz2.compress":
            return bz2.compress(plain, r.choice([1, 6, 9]))
        if writer == "lzma.compress(FORMAT_XZ)":
            return lzma.compress(plain, format=lzma.FORMAT_XZ, check=r.choice([lzma.CHECK_CRC64, lzma.CHECK_CRC32]))
        if writer == "lzma.compress(FORMAT_ALONE)":
            return lzma.compress(plain, format=lzma.FORMAT_ALONE)
        if writer.startswith("zstandard("):
            level = 19 if "19" in writer else 3
            return zstandard.ZstdCompressor(level=level, write_checksum="checksum" in writer).compress(plain)
        if writer == "lz4.frame.compress":
            return lz4.frame.compress(plain)
        if writer == "lz4.frame.compress(content_checksum)":
            return lz4.frame.compress(plain, content_checksum=True)
        if writer == "snappy.StreamCompressor":
            return snappy.StreamCompressor().add_chunk(plain)
        if writer.startswith("zipfile"):
            return self._zip(plain, stored=writer == "zipfile(stored+deflate)")
        if writer == "tarfile(w:gz)":
            return self._tar(plain, gz=True)
        if writer == "tarfile(w)":
            return self._tar(plain, gz=False)
        raise ValueError(writer)

    def _entries(self, plain: bytes) -> list[tuple[str, bytes]]:
        r = self.rng
        k = r.randrange(1, 5)
        cuts = sorted(r.randrange(len(plain) + 1) for _ in range(k - 1))
        parts = [plain[a:b] for a, b in zip([0, *cuts], [*cuts, len(plain)], strict=True)]
        folder = r.choice(["export", "home/user/Documents", "tmp/stage", "backup"])
        names = ["customers", "passwords", "notes", "ledger", "contacts", "db"]
        return [(f"{folder}/{r.choice(names)}_{i}.{r.choice(['csv', 'txt', 'json'])}", p) for i, p in enumerate(parts)]

    def _zip(self, plain: bytes, stored: bool) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for i, (name, part) in enumerate(self._entries(plain)):
                info = zipfile.ZipInfo(name, date_time=(2026, 9, 21, 12, 0, 2 * i))
                method = zipfile.ZIP_STORED if stored and i == 0 else zipfile.ZIP_DEFLATED
                info.compress_type = method
                info.external_attr = 0o644 << 16
                z.writestr(info, part)
        return buf.getvalue()

    def _tar(self, plain: bytes, gz: bool) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.USTAR_FORMAT) as t:
            for name, part in self._entries(plain):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(part), MTIME, 0o644
                info.uname = info.gname = "user"
                t.addfile(info, io.BytesIO(part))
        out = bytearray(buf.getvalue())
        if gz:  # tarfile's GzipFile stamps the current time; MTIME has no checksum over it
            out[4:8] = struct.pack("<I", MTIME)
        return bytes(out)

    def pick_writer(self, allow_snappy: bool) -> tuple[str, str]:
        ws = [w for w in WRITERS if allow_snappy or w[0] != "snappy"]
        fmt, writer, _ = self.rng.choices(ws, weights=[w[2] for w in ws])[0]
        return fmt, writer

    def b64_item(self, fmt_writer: tuple[str, str], member: bytes) -> tuple[bytes, int, int, str]:
        """(text fragment, offset of the run in it, run length, context)."""
        r = self.rng
        enc = base64.b64encode(member).decode()
        ctx = r.choice(B64_CONTEXTS)
        if ctx == "json":
            day = r.randrange(1, 29)
            pre = f'{{"ts": "2026-11-{day:02d}T10:00:00Z", "name": "{fmt_writer[0]}.bin", "attachment": "'
            run, post = enc, '"}\n'
        elif ctx == "mime":
            pre = (
                "\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
                f'Content-Disposition: attachment; filename="part{r.randrange(100)}.bin"\n\n'
            )
            run = "\n".join(enc[i : i + 76] for i in range(0, len(enc), 76))
            post = "\n\n"
        elif ctx == "kv":
            pre = f"\n2026-11-{r.randrange(1, 29):02d}T10:00:00.000Z INFO  [upload] stored blob payload="
            run, post = enc, f" size={len(member)} status=ok\n"
        elif ctx == "data_uri":
            pre = '\n<img alt="x" src="data:application/octet-stream;base64,'
            run, post = enc, '">\n'
        else:
            pre, run, post = "\n", enc, "\n"
        return (pre + run + post).encode(), len(pre), len(run), ctx


# -- mixed corpus --------------------------------------------------------------------------------
FILE_KINDS = [
    ("text", 45),
    ("random", 22),
    ("mixed", 15),
    ("whole", 8),
    ("plain-text", 5),
    ("plain-random", 5),
]
EXT = {"gzip": "gz", "zlib": "zz", "bzip2": "bz2", "xz": "xz", "lzma": "lzma", "zstd": "zst", "lz4": "lz4"}
EXT.update({"snappy": "sz", "zip": "zip", "tar": "tar"})


def build_file(g: Gen, kind: str, size: int) -> tuple[bytes, list[dict], str]:
    """One file's bytes, its planted members (offsets in the file) and its extension."""
    r = g.rng
    if kind == "whole":
        fmt, writer = g.pick_writer(allow_snappy=True)
        plain, pk = g.plaintext(4 * KiB, 2 * MiB)
        m = g.member(writer, plain)
        ent = {"offset": 0, "format": fmt, "length": len(m), "sha256": sha(m), "writer": writer}
        ent.update(plain=pk, plain_length=len(plain), placement="whole-file")
        return m, [ent], EXT[fmt] if writer != "tarfile(w:gz)" else "tar.gz"
    if kind == "plain-text":
        tk = r.choice(TEXT_KINDS)
        return g.text(size, tk), [], tk
    if kind == "plain-random":
        return g.randbytes(size), [], "bin"

    text_kind = r.choice(TEXT_KINDS)
    # items: (bytes, entry or None); members are about one per 160 KiB of file
    n_items = max(1, round(size / r.uniform(96 * KiB, 224 * KiB)))
    items: list[tuple[bytes, dict]] = []
    for _ in range(n_items):
        as_b64 = kind == "text" and r.random() < 0.3
        fmt, writer = g.pick_writer(allow_snappy=kind == "text")
        while as_b64 and fmt not in B64_FORMATS:
            fmt, writer = g.pick_writer(allow_snappy=False)
        plain, pk = g.plaintext(256, 48 * KiB if as_b64 else 512 * KiB)
        m = g.member(writer, plain)
        ent = {"format": fmt, "length": len(m), "sha256": sha(m), "writer": writer, "plain": pk}
        ent["plain_length"] = len(plain)
        if as_b64:
            frag, run_at, run_len, ctx = g.b64_item((fmt, writer), m)
            ent.update(encoding="base64", context=ctx, run_length=run_len, _rel=run_at, _member=m)
            items.append((frag, ent))
        else:
            ent.update(_rel=0)
            items.append((m, ent))
    filler = max(size - sum(len(b) for b, _ in items), 64 * (len(items) + 1))
    weights = [r.random() for _ in range(len(items) + 1)]
    gaps = [int(filler * w / sum(weights)) for w in weights]
    for i in range(1, len(items)):  # 5% of neighbouring members touch (no gap)
        if r.random() < 0.05 and items[i - 1][1]["format"] != "snappy":
            gaps[i] = 0
    for i, (_, ent) in enumerate(items):  # snappy has no end marker: text must follow
        if ent["format"] == "snappy" and "encoding" not in ent:
            gaps[i + 1] = max(gaps[i + 1], 64)
    out = bytearray()
    if kind == "text" and text_kind == "csv":
        out += CSV_HEADER.encode()
    members = []
    for i in range(len(items) + 1):
        if kind == "text":
            out += g.text(gaps[i], text_kind)
        elif kind == "random":
            out += g.randbytes(gaps[i])
        else:  # mixed: each gap is text or random
            out += g.text(gaps[i], text_kind) if r.random() < 0.5 else g.randbytes(gaps[i])
        if i == len(items):
            break
        blob, ent = items[i]
        ent = dict(ent)
        ent["offset"] = len(out) + ent.pop("_rel")
        if ent.get("format") == "snappy" and kind != "text":
            raise AssertionError("snappy outside text")
        member = ent.pop("_member", None)
        if member is not None:  # check the run decodes back to the member
            run = bytes(blob[ent["offset"] - len(out) :][: ent["run_length"]])
            assert base64.b64decode(run.replace(b"\n", b"")) == member
        else:
            assert blob[: ent["length"]] == blob and sha(blob) == ent["sha256"]
        out += blob
        members.append(ent)
    ext = {"text": text_kind, "random": "bin", "mixed": "dat"}[kind]
    return bytes(out), members, ext


def gen_mixed(out_dir: Path, size_mb: float, seed: int, quiet: bool = False) -> dict:
    g = Gen(seed)
    r = g.rng
    files_dir = out_dir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    total_target = int(size_mb * MiB)
    total = 0
    files, members = [], []
    i = 0
    t0 = time.monotonic()
    corpus_hash = hashlib.sha256()
    while total < total_target:
        kind = r.choices([k for k, _ in FILE_KINDS], weights=[w for _, w in FILE_KINDS])[0]
        size = min(g.loguniform(4 * KiB, 12 * MiB), max(total_target - total, 4 * KiB))
        data, ents, ext = build_file(g, kind, size)
        name = f"{i:04d}-{kind}.{ext}"
        (files_dir / name).write_bytes(data)
        digest = sha(data)
        corpus_hash.update(name.encode() + b"\0" + digest.encode() + b"\0")
        files.append({"name": name, "kind": kind, "size": len(data), "sha256": digest})
        for e in ents:
            members.append({"file": name, **e})
        total += len(data)
        i += 1
    summary = {
        "files": len(files),
        "bytes": total,
        "members": len(members),
        "members_raw": sum(1 for m in members if "encoding" not in m),
        "members_base64": sum(1 for m in members if m.get("encoding") == "base64"),
        "by_format": dict(sorted(Counter(m["format"] for m in members).items())),
        "by_writer": dict(sorted(Counter(m["writer"] for m in members).items())),
        "file_kinds": dict(sorted(Counter(f["kind"] for f in files).items())),
        "corpus_sha256": corpus_hash.hexdigest(),
    }
    truth = {
        "mode": "mixed",
        "seed": seed,
        "size_mb": size_mb,
        "summary": summary,
        "files": files,
        "members": members,
    }
    write_truth(out_dir, truth)
    if not quiet:
        print(
            f"mixed corpus: {len(files)} files, {total:,} B, {len(members)} members "
            f"({summary['members_base64']} in base64) in {time.monotonic() - t0:.1f} s -> {out_dir}"
        )
    return truth


# -- random file with planted magic numbers ------------------------------------------------------
def plant(g: Gen, variant: str) -> bytes:
    """A bare header of one format (valid CRCs where the header has one); random bytes follow it."""
    r = g.rng
    t = struct.pack("<I", MTIME + r.randrange(10**6))
    if variant == "gzip_bare":
        return b"\x1f\x8b\x08\x00"
    if variant == "gzip_header":
        return b"\x1f\x8b\x08\x00" + t + b"\x00" + bytes([r.choice([0, 3, 11, 255])])
    if variant == "gzip_fname":
        return b"\x1f\x8b\x08\x08" + t + b"\x00\x03" + f"data{r.randrange(1000)}.csv".encode() + b"\x00"
    if variant == "zlib":
        return b"\x78" + bytes([r.choice([0x01, 0x5E, 0x9C, 0xDA])])
    if variant == "bzip2":
        return b"BZh" + str(r.randrange(1, 10)).encode() + b"1AY&SY"
    if variant == "xz":
        flags = bytes([0, r.choice([0, 1, 4, 10])])
        return b"\xfd7zXZ\x00" + flags + struct.pack("<I", zlib.crc32(flags))
    if variant == "lzma_unknown_size":
        return b"\x5d\x00\x00\x80\x00" + b"\xff" * 8 + b"\x00"
    if variant == "lzma_known_size":
        return (
            b"\x5d\x00\x00"
            + struct.pack("<H", r.choice([1, 8, 0x80, 0x100]))
            + struct.pack("<Q", r.randrange(1 << 20))
            + b"\x00"
        )
    if variant == "zstd":
        return b"\x28\xb5\x2f\xfd" + bytes([r.randrange(256) & ~0x08])
    if variant == "lz4":
        flg = 0x40 | r.choice([0x20, 0x00]) | r.choice([0x10, 0]) | r.choice([0x08, 0]) | r.choice([0x04, 0])
        desc = bytes([flg, r.choice([0x40, 0x50, 0x60, 0x70])])
        if flg & 0x08:
            desc += struct.pack("<Q", r.randrange(1, 1 << 20))
        return b"\x04\x22\x4d\x18" + desc + bytes([(xxh32(desc) >> 8) & 0xFF])
    if variant == "snappy":
        return b"\xff\x06\x00\x00sNaPpY"
    if variant.startswith("zip_"):
        flags, method = {
            "zip_deflate": (0, 8),
            "zip_stored": (0, 0),
            "zip_descriptor": (8, 8),
            "zip_encrypted": (1, 8),
        }[variant]
        name = f"docs/file{r.randrange(10000)}.txt".encode()
        csize = 0 if flags & 8 else r.randrange(100, 50000)
        usize = 0 if flags & 8 else csize * r.randrange(1, 5)
        crc = 0 if flags & 8 else r.getrandbits(32)
        dtime, ddate = (
            r.getrandbits(16) & 0xBFFF,
            ((2026 - 1980) << 9) | (r.randrange(1, 13) << 5) | r.randrange(1, 29),
        )
        return (
            struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                flags,
                method,
                dtime,
                ddate,
                crc,
                csize,
                usize,
                len(name),
                0,
            )
            + name
        )
    if variant.startswith("7z_"):
        if variant == "7z_plausible_next":
            tail = struct.pack("<QQI", r.randrange(0, 4096), r.randrange(20, 400), r.getrandbits(32))
        else:
            tail = g.randbytes(20)
        return b"7z\xbc\xaf\x27\x1c\x00" + bytes([r.choice([2, 3, 4])]) + struct.pack("<I", zlib.crc32(tail)) + tail
    if variant == "rar4":
        return b"Rar!\x1a\x07\x00"
    if variant == "rar5":
        return b"Rar!\x1a\x07\x01\x00"
    if variant == "cab":
        size = r.randrange(1000, 200000)
        hdr = struct.pack(
            "<4sIIIIIBBHHHHH",
            b"MSCF",
            0,
            size,
            0,
            r.randrange(44, 200),
            0,
            3,
            1,
            1,
            r.randrange(1, 6),
            0,
            r.getrandbits(16),
            0,
        )
        return hdr
    if variant.startswith("tar_"):
        info = tarfile.TarInfo(f"home/user/notes_{r.randrange(10000)}.txt")
        info.size, info.mtime, info.mode, info.uname, info.gname = (
            r.randrange(0, 100000),
            MTIME,
            0o644,
            "user",
            "user",
        )
        return info.tobuf(format=tarfile.USTAR_FORMAT if variant == "tar_ustar" else tarfile.GNU_FORMAT)
    if variant == "dotnet_deflate":
        return bytes([r.choice([0xEC, 0xED])]) + bytes.fromhex("bd07601c499625262f6dca7b7f4af5")
    if variant == "b64_gzip":  # base64 text of a gzip header and random bytes
        return base64.b64encode(b"\x1f\x8b\x08\x00" + t + b"\x00\xff" + g.randbytes(300))
    if variant == "b64_zlib":
        return base64.b64encode(b"\x78\x9c" + g.randbytes(300))
    raise ValueError(variant)


PLANT_VARIANTS = [
    ("gzip", "gzip_bare"),
    ("gzip", "gzip_header"),
    ("gzip", "gzip_fname"),
    ("zlib", "zlib"),
    ("bzip2", "bzip2"),
    ("xz", "xz"),
    ("lzma", "lzma_unknown_size"),
    ("lzma", "lzma_known_size"),
    ("zstd", "zstd"),
    ("lz4", "lz4"),
    ("snappy", "snappy"),
    ("zip", "zip_deflate"),
    ("zip", "zip_stored"),
    ("zip", "zip_descriptor"),
    ("zip", "zip_encrypted"),
    ("7z", "7z_random_next"),
    ("7z", "7z_plausible_next"),
    ("rar", "rar4"),
    ("rar", "rar5"),
    ("cab", "cab"),
    ("tar", "tar_ustar"),
    ("tar", "tar_gnu"),
    ("deflate", "dotnet_deflate"),
    ("gzip", "b64_gzip"),
    ("zlib", "b64_zlib"),
]


def gen_random(out_dir: Path, size_mb: float, seed: int, quiet: bool = False, spacing: int = 32 * KiB) -> dict:
    g = Gen(seed)
    r = g.rng
    t0 = time.monotonic()
    size = int(size_mb * MiB)
    buf = bytearray(g.randbytes(size))
    n = max(1, size // spacing)
    slot = size // n
    plants = []
    order = [PLANT_VARIANTS[i % len(PLANT_VARIANTS)] for i in range(n)]  # equal counts, shuffled order
    r.shuffle(order)
    for i, (fmt, variant) in enumerate(order):
        h = plant(g, variant)
        off = i * slot + r.randrange(0, slot - len(h) - 1024)
        buf[off : off + len(h)] = h
        plants.append({"offset": off, "format": fmt, "variant": variant, "header_length": len(h)})
    files_dir = out_dir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    (files_dir / "random.bin").write_bytes(buf)
    summary = {
        "files": 1,
        "bytes": size,
        "plants": len(plants),
        "by_variant": dict(sorted(Counter(p["variant"] for p in plants).items())),
        "corpus_sha256": sha(bytes(buf)),
    }
    truth = {
        "mode": "random",
        "seed": seed,
        "size_mb": size_mb,
        "summary": summary,
        "files": [{"name": "random.bin", "kind": "random+magics", "size": size, "sha256": summary["corpus_sha256"]}],
        "members": [],
        "plants": plants,
    }
    write_truth(out_dir, truth)
    if not quiet:
        print(
            f"random file: {size:,} B with {len(plants)} planted headers in {time.monotonic() - t0:.1f} s -> {out_dir}"
        )
    return truth


def write_truth(out_dir: Path, truth: dict) -> None:
    """truth.json is written last (atomically): its presence marks a complete corpus."""
    tmp = out_dir / "truth.json.tmp"
    tmp.write_text(json.dumps(truth, indent=1) + "\n")
    os.replace(tmp, out_dir / "truth.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output folder (files/ and truth.json are written there)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size-mb", type=float, default=256, help="mixed corpus size in MiB (approximate)")
    ap.add_argument(
        "--random-mb",
        type=float,
        nargs="?",
        const=256,
        default=None,
        help="instead: one random file of this many MiB (default 256) with planted magic numbers",
    )
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if (a.out / "files").exists() and any((a.out / "files").iterdir()):
        print(f"{a.out}/files is not empty; choose a fresh --out", file=sys.stderr)
        return 2
    if a.random_mb is not None:
        gen_random(a.out, a.random_mb, a.seed, a.quiet)
    else:
        gen_mixed(a.out, a.size_mb, a.seed, a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
