"""base64 runs (standard and URL-safe, MIME line breaks allowed) around a hint, decoded."""

from __future__ import annotations

import binascii
import re
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

from sensor.content.base import Peeled, decoders, expand_run
from sensor.model import Buffer

RUN = re.compile(rb"[A-Za-z0-9+/_\-\r\n]*=?=?")
BACK = re.compile(rb"[A-Za-z0-9+/_\-\r\n]*")  # '=' is padding: it never comes before the payload
MIN_RUN = 24
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_SPACE = re.compile(rb"[\r\n]+")


def decode_b64(text: bytes) -> bytes | None:
    """Decode a run, tolerating line breaks, URL-safe letters and missing padding."""
    text = _SPACE.sub(b"", text).translate(_URLSAFE)
    eq = text.find(b"=")
    if eq >= 0:
        text = text[:eq]
    text = text[: len(text) - len(text) % 4 if len(text) % 4 == 1 else len(text)]
    try:
        return binascii.a2b_base64(text + b"=" * (-len(text) % 4), strict_mode=False)
    except binascii.Error:
        return None


def leading_fragment(text: bytes) -> int:
    """Bytes of text before a wrapped run's first real line ("...of the sentence\nH4sI..." -> 16).

    MIME wraps base64 at a fixed width, so a first line of another length is the tail of the text
    before the run, whose letters happen to be in the base64 alphabet.
    """
    if b"\n" not in text:
        return 0
    lines = text.split(b"\n")
    lens = [len(line.rstrip(b"\r")) for line in lines]
    if len(lines) >= 3:
        width = Counter(lens[1:-1]).most_common(1)[0][0]
        keep = lens[0] == width
    else:
        keep = lens[0] >= lens[1] and lens[0] % 4 == 0
    return 0 if keep else len(lines[0]) + 1


@decoders.register("base64")
class Base64Decoder:
    """The run around the hint, decoded from each of the four possible starting alignments."""

    name: ClassVar[str] = "base64"

    def peel(self, data: Buffer, offset: int, max_encoded: int) -> Iterator[Peeled]:
        start, end = expand_run(data, offset, RUN, max_encoded, BACK)
        # leading line breaks and URL-safe punctuation are not part of the payload
        raw = bytes(data[start:end])
        lead = len(raw) - len(raw.lstrip(b"\r\n-_"))
        start += lead
        start += leading_fragment(bytes(data[start:end]))
        if end - start < MIN_RUN:
            return
        capped = end - start >= max_encoded
        text = bytes(data[start:end])
        # A run glued to preceding text ("payloadH4sI...") starts off by 1-3 characters; the
        # detector tries the other shifts only when the first decode yields nothing.
        for shift in range(4):
            decoded = decode_b64(text[shift:])
            if decoded:
                yield (Peeled("base64", start + shift, end, decoded, capped))
