"""DNS messages (RFC 1035) read from hostile bytes: the header, the questions and the answers that carry data.

Names are kept as their raw labels (bytes, case preserved): a tunnel spells data into them, with binary labels
(iodine's base128) as often as hostname characters. Compression pointers are followed only backwards, so a
pointer loop ends the name. Lenient reading (port 53) keeps whatever parsed before the bytes ran out, as a
resolver answering a truncated message would; strict reading (any other port) asks every count to hold and the
message to end where its records end, so that only DNS is read as DNS.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEADER = struct.Struct("!HHHHHH")
MAX_LABELS = 128  # a 255-byte name has at most 127 labels
MAX_NAME = 1024  # longer than RFC 1035's 255: some stub resolvers pass longer names; none passes this
MAX_RECORDS = 512  # per section, whatever the header says

TXT, NULL = 16, 10
NAME_RDATA = {2: 0, 5: 0, 12: 0, 39: 0, 15: 2, 33: 6}  # NS CNAME PTR DNAME: the name; MX after 2 bytes; SRV after 6


class DnsError(ValueError):
    """The bytes are not a DNS message (or not one this reading accepts)."""


class Question(NamedTuple):
    """One question: its name's labels (raw, case preserved), type and class."""

    labels: tuple[bytes, ...]
    qtype: int
    qclass: int


class Answer(NamedTuple):
    """One answer record whose data may carry a tunnel's bytes: TXT strings, NULL rdata or a target name."""

    labels: tuple[bytes, ...]  # the owner name
    rtype: int
    texts: tuple[bytes, ...] = ()  # TXT character-strings
    raw: bytes = b""  # NULL rdata
    target: tuple[bytes, ...] = ()  # CNAME, DNAME, NS, PTR, MX, SRV target labels


class Message(NamedTuple):
    """A parsed DNS message: the parts a tunnel can use."""

    id: int
    response: bool
    opcode: int
    rcode: int
    questions: tuple[Question, ...]
    answers: tuple[Answer, ...]
    complete: bool  # every record the header counts was read


def _name(data: bytes, off: int) -> tuple[tuple[bytes, ...], int]:
    """The labels of the name at `off` and the offset just past it (past the first pointer, when one is used)."""
    labels: list[bytes] = []
    total = 0
    end = -1
    lowest = off  # a pointer must point before every byte of this name read so far: no loops
    while True:
        if off >= len(data):
            raise DnsError("name runs past the message")
        n = data[off]
        if n == 0:
            off += 1
            break
        kind = n & 0xC0
        if kind == 0xC0:
            if off + 1 >= len(data):
                raise DnsError("compression pointer cut off")
            target = ((n & 0x3F) << 8) | data[off + 1]
            if end < 0:
                end = off + 2
            if target >= lowest:
                raise DnsError("compression pointer does not point back")
            off = lowest = target
            continue
        if kind:
            raise DnsError(f"label type 0x{kind:02x}")
        label = data[off + 1 : off + 1 + n]
        if len(label) < n:
            raise DnsError("label runs past the message")
        labels.append(label)
        total += n + 1
        if len(labels) > MAX_LABELS or total > MAX_NAME:
            raise DnsError("name too long")
        off += 1 + n
    return tuple(labels), (end if end >= 0 else off)


def _answer(data: bytes, off: int) -> tuple[Answer | None, int]:
    labels, off = _name(data, off)
    if off + 10 > len(data):
        raise DnsError("record header cut off")
    rtype, _rclass, _ttl, rdlen = struct.unpack_from("!HHIH", data, off)
    off += 10
    end = off + rdlen
    if end > len(data):
        raise DnsError("record data runs past the message")
    if rtype == TXT:
        texts: list[bytes] = []
        p = off
        while p < end:
            n = data[p]
            texts.append(data[p + 1 : min(p + 1 + n, end)])
            p += 1 + n
        return Answer(labels, rtype, texts=tuple(texts)), end
    if rtype == NULL:
        return Answer(labels, rtype, raw=data[off:end]), end
    skip = NAME_RDATA.get(rtype)
    if skip is not None and off + skip < end:
        target, _ = _name(data, off + skip)
        return Answer(labels, rtype, target=target), end
    return None, end


class Record(NamedTuple):
    """Any resource record, its data raw: the name services (NetBIOS, LLMNR, mDNS) read A, AAAA and NB."""

    section: int  # 1 answer, 2 authority, 3 additional
    labels: tuple[bytes, ...]
    rtype: int
    ttl: int
    rdata: bytes


def records(data: bytes) -> tuple[int, int, list[tuple[bytes, ...]], list[Record]]:
    """(flags, questions' count, the questions' names, every record of the three sections) of a message in
    NetBIOS/DNS layout; DnsError when its header or a name does not parse (what parsed before stays out)."""
    if len(data) < HEADER.size:
        raise DnsError("shorter than a header")
    _, flags, qd, an, ns, ar = HEADER.unpack_from(data)
    off = HEADER.size
    names: list[tuple[bytes, ...]] = []
    for _ in range(min(qd, MAX_RECORDS)):
        labels, off = _name(data, off)
        names.append(labels)
        off += 4
    out: list[Record] = []
    for section, count in ((1, an), (2, ns), (3, ar)):
        for _ in range(min(count, MAX_RECORDS)):
            labels, off = _name(data, off)
            if off + 10 > len(data):
                raise DnsError("record header cut off")
            rtype, _rclass, ttl, rdlen = struct.unpack_from("!HHIH", data, off)
            off += 10
            out.append(Record(section, labels, rtype, ttl, data[off : off + rdlen]))
            off += rdlen
    return flags, qd, names, out


def parse(data: bytes, strict: bool = False) -> Message:
    """The message in `data`; DnsError when it is not one (strict) or not even its header and first question."""
    if len(data) < HEADER.size:
        raise DnsError("shorter than a DNS header")
    ident, flags, qd, an, ns, ar = HEADER.unpack_from(data)
    response = bool(flags & 0x8000)
    opcode = (flags >> 11) & 0xF
    if strict and (opcode not in (0, 4, 5) or qd != 1 or (not response and an) or flags & 0x0040):
        raise DnsError("header is not a plain query or answer")
    off = HEADER.size
    questions: list[Question] = []
    answers: list[Answer] = []
    complete = True
    try:
        for _ in range(min(qd, MAX_RECORDS)):
            labels, off = _name(data, off)
            if off + 4 > len(data):
                raise DnsError("question cut off")
            qtype, qclass = struct.unpack_from("!HH", data, off)
            off += 4
            questions.append(Question(labels, qtype, qclass))
        for _ in range(min(an, MAX_RECORDS)):
            ans, off = _answer(data, off)
            if ans is not None:
                answers.append(ans)
        if strict:
            for _ in range(ns + ar):
                _, off = _answer(data, off)
            if off != len(data):
                raise DnsError("bytes after the last record")
    except DnsError:
        if strict or not questions:
            raise
        complete = False
    return Message(ident, response, opcode, flags & 0xF, tuple(questions), tuple(answers), complete)


__all__ = ["Answer", "DnsError", "Message", "Question", "Record", "parse", "records"]
