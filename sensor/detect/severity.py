"""Alert or event, and a severity score, from where a member was found and what it is."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sensor.model import FileOrigin, Format, Kind, Member, NetworkOrigin, Origin
from sensor.policy import is_log_path, is_staging_path

# Container types whose insides are compressed as a matter of course (SIGNATURES.md §3 end).
CONTAINER_PREFIXES = (
    "image/",
    "audio/",
    "video/",
    "font/",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument",
    "application/vnd.oasis.opendocument",
    "application/vnd.ms-",
    "application/msword",
    "application/java-archive",
    "application/vnd.android.package-archive",
    "application/x-debian-package",
    "application/vnd.debian.binary-package",
    "application/x-rpm",
    "application/x-executable",
    "application/x-sharedlib",
    "application/x-pie-executable",
    "application/x-dosexec",
    "application/x-mach-binary",
    "application/epub+zip",
    "application/x-font",
    "application/vnd.ms-fontobject",
    "application/x-chrome-extension",
    "application/x-xpinstall",
    "application/x-iso9660-image",
    "application/x-msi",
    "application/vnd.ms-cab-compressed",  # only when the cab holds the member, not when it is one
)

EXTENSIONS: dict[Format, tuple[str, ...]] = {
    Format.GZIP: (".gz", ".tgz", ".gzip", ".z", ".svgz", ".emz", ".taz"),
    Format.ZLIB: (".zz", ".zlib", ".z", ".deflate"),
    Format.DEFLATE: (".deflate", ".z"),
    Format.BZIP2: (".bz2", ".bz", ".tbz", ".tbz2"),
    Format.XZ: (".xz", ".txz"),
    Format.LZMA: (".lzma", ".tlz"),
    Format.ZSTD: (".zst", ".zstd", ".tzst"),
    Format.LZ4: (".lz4",),
    Format.SNAPPY: (".sz", ".snappy"),
    Format.ZIP: (
        ".zip",
        ".jar",
        ".apk",
        ".docx",
        ".xlsx",
        ".pptx",
        ".odt",
        ".ods",
        ".odp",
        ".epub",
        ".whl",
        ".nupkg",
        ".xpi",
        ".ipa",
        ".war",
        ".kmz",
    ),
    Format.SEVENZIP: (".7z",),
    Format.RAR: (".rar", ".r00", ".cbr"),
    Format.CAB: (".cab",),
    Format.TAR: (".tar",),
    Format.OPENSSL: (".enc", ".bin", ".aes", ".ssl"),
    Format.OPENPGP: (".gpg", ".pgp", ".asc", ".enc"),
    Format.AGE: (".age", ".asc"),
    Format.FERNET: (".fernet", ".enc", ".token"),
    Format.CMS: (".p7m", ".p7", ".cms", ".der", ".pem", ".enc"),
    Format.JWE: (".jwe", ".jwt", ".token"),
}
TOKENS = (Format.FERNET, Format.JWE)  # web applications send these with every request: small ones are events
TOKEN_ALERT_SIZE = 4096

BASE_COMPRESSED = 50
BASE_ARCHIVE = 30  # tar and stored zip: archives without compression
CONTAINER_SEVERITY = 15
LOG_SEVERITY = 10
INSIDE_CONTAINER = "inside_container"
ZIP_IS_DOCUMENT = "zip_is_document"
# judgements of members a container holds by design: folded into one finding per container
BY_DESIGN = ((INSIDE_CONTAINER,), (ZIP_IS_DOCUMENT,))


@dataclass(frozen=True, slots=True)
class Judgement:
    """kind, severity and the reasons behind them (shown as `stagewatch.reasons`)."""

    kind: Kind
    severity: int
    reasons: tuple[str, ...]


def is_container(mime: str | None) -> bool:
    """True for formats that hold compressed data by design (PNG, PDF, OOXML, JAR...)."""
    return bool(mime) and mime.startswith(CONTAINER_PREFIXES)


def hides_format(name: str, fmt: Format) -> bool:
    """True when the file's extension is not one this format goes by (a gzip in report.dat)."""
    lower = name.lower()
    return not any(lower.endswith(ext) for ext in EXTENSIONS.get(fmt, ()))


def judge(
    origin: Origin,
    member: Member,
    container_mime: str | None,
    document_mime: str | None,
    sensitive: tuple[str, ...],
    encoding: tuple[str, ...],
    content: tuple[str, ...] = (),
    container_size: int | None = None,
) -> Judgement:
    """Score one member: staging location, encryption and sensitive names make alerts.

    A member a container holds by design (a PDF's FlateDecode stream, a PNG's IDAT, the zip an
    OOXML file is) is a low event, unless it is encrypted, holds a sensitive name or matched a
    content rule: then it is judged like any member (an encrypted zip appended to a PNG).
    `container_size`: the whole object's size (defaults to the file's), so a member that *is*
    the object is not judged as inside it.
    """
    if member.format in TOKENS and member.length < TOKEN_ALERT_SIZE and not (sensitive or content):
        return Judgement(Kind.EVENT, CONTAINER_SEVERITY, ("session_token_size",))
    plain = not (member.encrypted or sensitive or content)
    size = _size(origin) if container_size is None else container_size
    if plain and is_container(container_mime) and not (member.offset == 0 and member.length >= size):
        return Judgement(Kind.EVENT, CONTAINER_SEVERITY, (INSIDE_CONTAINER,))
    if plain and document_mime:
        return Judgement(Kind.EVENT, CONTAINER_SEVERITY, (ZIP_IS_DOCUMENT,))
    reasons: list[str] = []
    score = BASE_COMPRESSED if member.compressed or member.encrypted else BASE_ARCHIVE
    if not (member.compressed or member.encrypted):
        reasons.append("archive_without_compression")
    alert = False
    if isinstance(origin, NetworkOrigin):
        # DESIGN.md: data leaving home_net is an alert; any other direction is an event to hunt with
        if origin.direction == "outbound":
            score += 20
            alert = True
            reasons.append("outbound")
        else:
            reasons.append(origin.direction)
    path = origin.path if isinstance(origin, FileOrigin) else ""
    if path and is_log_path(path):
        return Judgement(Kind.EVENT, LOG_SEVERITY, ("log_folder",))
    if path and is_staging_path(path):
        score += 20
        alert = True
        reasons.append("staging_path")
    inbound = isinstance(origin, NetworkOrigin) and origin.direction != "outbound"
    if member.encrypted:
        score += 15
        alert = alert or not inbound
        reasons.append("encrypted")
    if sensitive:
        score += 20
        alert = alert or not inbound
        reasons.append("sensitive_name")
    if content:
        # the analyst's own content rule says what the member holds (card numbers, keys, a code name)
        score += 25
        alert = alert or not inbound
        reasons.append("content_rule")
    if path and hides_format(os.path.basename(path), member.format):
        score += 10
        reasons.append("extension_mismatch")
    if encoding:
        score += 5
        reasons.append("encoded")
    if not alert:
        score -= 20
    return Judgement(Kind.ALERT if alert else Kind.EVENT, max(1, min(score, 100)), tuple(reasons))


def _size(origin: Origin) -> int:
    return origin.size if isinstance(origin, FileOrigin) else 0
