"""Compression or decompression? The one thing the host rules need that Sigma cannot say.

The same APIs serve both: `IO.Compression.GzipStream` compresses a staging archive in one script
and unpacks a base64 loader in another (Metasploit psexec_psh, Covenant); `Expand-Archive` loads
System.IO.Compression exactly like `Compress-Archive`. A hit whose text shows only decompression
is labelled as such and scored down, so it never becomes an incident on its own.
"""

from __future__ import annotations

import re

from sensor.model import HostEvent

DECOMPRESS = re.compile(
    r"CompressionMode\]::Decompress|::Decompress\b|Expand-Archive|ExtractToDirectory|\.extractall\(|"
    r"\bdecompress\(|gunzip|\bunzip\b|\btar\s+-?[a-z]*x|GzipStream\(\s*\(?\s*New-Object\s+IO\.MemoryStream\(\s*,\s*"
    r"\[Convert\]::FromBase64String|\.read\(\)|gunzipSync|inflateSync",
    re.IGNORECASE,
)
COMPRESS = re.compile(
    r"CompressionMode\]::Compress\b|Compress-Archive|CreateFromDirectory|CompressionLevel\]|"
    r"\bcompress\(|make_archive|gzipSync|deflateSync|brotliCompressSync|IO::Compress|GzipWriter|gzcompress|"
    r"gzencode|['\"]w[b:]?|['\"]x[b:]|\.write\(|writeFileSync",
    re.IGNORECASE,
)


def operation_of(event: HostEvent) -> str:
    """compress | decompress | unknown, from the command line or script text of the event."""
    if event.action in ("file_create",):
        return "compress"  # a compressed file was written
    text = " ".join(t for t in (event.command_line, event.script) if t)
    if not text:
        return "unknown"
    down = DECOMPRESS.search(text) is not None
    up = COMPRESS.search(text) is not None
    if up and not down:
        return "compress"
    if down and not up:
        return "decompress"
    if up and down:
        # both: a loader that decompresses then writes (.write) is still a loader; an explicit
        # Decompress mode or Expand-Archive decides
        return "decompress" if re.search(r"::Decompress|Expand-Archive", text, re.IGNORECASE) else "compress"
    return "unknown"


__all__ = ["operation_of"]
