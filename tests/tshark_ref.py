"""tshark as a peer reference: the objects ``tshark --export-objects`` writes for a capture.

Test support only; the sensor never depends on tshark. Rules of tshark 4.0 worth knowing when comparing
(measured with tshark 4.0.17 on the 25 captures of ../shared/pcaps/real against their raw TCP streams):

- http: one object per request or response body, after de-chunking AND content-decoding (gzip, deflate with
  or without zlib header). Request bodies (POST) are exported too. A multipart body is ONE object (the whole
  body, boundaries included). A body that fails to decode (lzma, "gzip,gzip", or a body merely labelled gzip)
  or that is cut short by the end of the capture is NOT exported. Names are the last URI path segment
  ("/" becomes "%2f"); Content-Disposition is ignored; repeats get "name(1).ext", "name(2).ext", ...
- imf: one ``<Subject>.eml`` per SMTP DATA: headers and body as sent, NOT dot-unstuffed; the closing CRLF is
  kept or dropped depending on how the terminator was segmented.
- ftp-data: only transfers whose data connection tshark ties to a STOR or RETR command (not APPE/STOU/LIST,
  not a connection opened before the command); named after the command's argument; partial transfers are
  exported as far as captured.
- ``tcp.reassemble_out_of_order`` is FALSE by default in 4.0; without it SMTP DATA with out-of-order
  segments comes out corrupted, hence ``out_of_order=True`` by default here.

What the export leaves out, two more views supply: ``coded_bodies`` gives each content-coded HTTP body as
sent (de-chunked, still encoded: tshark's "Content-encoded entity body" in PDML, which it shows even for
codings it cannot decode), and ``follow_tcp`` gives both directions of one TCP stream as captured
(``-z follow,tcp,raw``), for bodies the export drops because the capture cuts them short.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

TSHARK = "tshark"
PROTOCOLS = ("http", "imf", "ftp-data", "smb", "tftp", "dicom")
DEFAULT_TIMEOUT = 120.0
# tshark exits 2 for a capture whose last packet is cut short, yet exports everything before it
_CUT_SHORT = "appears to have been cut short in the middle of a packet"
_ROOT_WARNING = "Running as user"


class TsharkError(RuntimeError):
    """tshark could not export the objects of a capture."""


@dataclass(frozen=True)
class RefObject:
    """One object as tshark exported it: its protocol, file name in the output folder, size and sha256."""

    protocol: str
    filename: str
    size: int
    sha256: str
    path: Path  # the exported file (left in place for inspection)


@dataclass(frozen=True)
class CodedBody:
    """One content-coded HTTP body as tshark dissects it: its frame, the Content-Encoding, the bytes as sent."""

    frame: int
    coding: str  # the header's value, e.g. "gzip" or "gzip,gzip"
    data: bytes  # de-chunked, not decoded


def tshark_available() -> bool:
    """True when a tshark that answers ``--version`` is on PATH."""
    exe = shutil.which(TSHARK)
    if exe is None:
        return False
    try:
        done = subprocess.run([exe, "--version"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def tshark_missing() -> str | None:
    """Why tshark cannot be the reference here, or None (for ``tests.conftest.need``)."""
    return None if tshark_available() else "tshark is not installed (make test installs it: apt-get install tshark)"


def _errors(stderr: str) -> list[str]:
    """The stderr lines that report a problem (not the running-as-root notice, not a cut-short capture)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and _ROOT_WARNING not in ln and _CUT_SHORT not in ln]


def _run(pcap: Path, args: list[str], doing: str, out_of_order: bool, timeout: float) -> str:
    """Run ``tshark -r PCAP -q [-o tcp.reassemble_out_of_order:TRUE] ARGS`` with an empty configuration folder,
    so personal Wireshark preferences cannot change the result; its standard output.

    Raises TsharkError naming the capture ("tshark failed {doing} {pcap}") when tshark is missing, fails, or
    runs past ``timeout`` seconds; a capture whose last packet is cut short is not a failure.
    """
    exe = shutil.which(TSHARK)
    if exe is None:
        raise TsharkError(f"tshark is not installed, needed for {doing} {pcap}")
    cmd = [exe, "-r", str(pcap), "-q"]
    if out_of_order:
        cmd += ["-o", "tcp.reassemble_out_of_order:TRUE"]
    with tempfile.TemporaryDirectory(prefix="tshark-config.") as config_dir:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=config_dir)
        try:
            done = subprocess.run(cmd + args, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TsharkError(f"tshark timed out after {timeout:g} s {doing} {pcap}") from exc
        except OSError as exc:
            raise TsharkError(f"tshark could not be run for {pcap}: {exc}") from exc
    errors = _errors(done.stderr)
    if done.returncode != 0 and (errors or _CUT_SHORT not in done.stderr):
        detail = "; ".join(errors) or f"exit status {done.returncode}"
        raise TsharkError(f"tshark failed {doing} {pcap}: {detail}")
    return done.stdout


def export_objects(
    pcap: Path,
    proto: str,
    workdir: Path,
    out_of_order: bool = True,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[RefObject]:
    """Export the ``proto`` objects of ``pcap`` with tshark; the objects sorted by file name.

    Runs ``tshark -r PCAP -q [-o tcp.reassemble_out_of_order:TRUE] --export-objects PROTO,DIR`` with DIR a
    fresh folder under ``workdir`` (tshark numbers repeated names against what the folder already holds).
    The exported files stay in DIR for inspection. Errors as ``_run``.
    """
    if proto not in PROTOCOLS:
        raise ValueError(f"unknown export-objects protocol {proto!r} (one of {', '.join(PROTOCOLS)})")
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{pcap.name}.{proto}.", dir=workdir))
    out_dir = run_dir / "objects"
    out_dir.mkdir()
    _run(pcap, ["--export-objects", f"{proto},{out_dir}"], f"exporting {proto} objects of", out_of_order, timeout)
    objects = []
    for path in sorted(out_dir.iterdir()):
        data = path.read_bytes()
        objects.append(RefObject(proto, path.name, len(data), hashlib.sha256(data).hexdigest(), path))
    return objects


def coded_bodies(pcap: Path, out_of_order: bool = True, *, timeout: float = DEFAULT_TIMEOUT) -> list[CodedBody]:
    """Every content-coded HTTP body (requests' too) as sent, in frame order, whether tshark can decode it or not.

    Reads the PDML of ``-Y http.content_encoding``: each body is the field shown as "Content-encoded entity
    body (CODING): N bytes", whose value is the de-chunked body before decoding. Errors as ``_run``.
    """
    pdml = _run(
        pcap, ["-Y", "http.content_encoding", "-T", "pdml"], "dissecting the HTTP bodies of", out_of_order, timeout
    )
    bodies = []
    for packet in ET.fromstring(pdml).iter("packet"):
        frame = int(next(f.get("show", "0") for f in packet.iter("field") if f.get("name") == "num"))
        for field in packet.iter("field"):
            shown = re.match(r"Content-encoded entity body \((.*?)\): (\d+) bytes", field.get("show", ""))
            if shown:
                data = bytes.fromhex(field.get("value", ""))
                if len(data) != int(shown[2]):
                    raise TsharkError(f"{pcap} frame {frame}: the PDML holds {len(data)} of {shown[2]} body bytes")
                bodies.append(CodedBody(frame, shown[1], data))
    return bodies


def follow_tcp(
    pcap: Path, stream: int, out_of_order: bool = True, *, timeout: float = DEFAULT_TIMEOUT
) -> tuple[bytes, bytes]:
    """Both directions of TCP stream ``stream`` (tshark's tcp.stream index) as reassembled: (node 0, node 1).

    Node 0 is the endpoint tshark saw first, the client when the handshake was captured. Reads the hex lines of
    ``-z follow,tcp,raw,STREAM``: node 1's lines are indented with a tab. Errors as ``_run``.
    """
    text = _run(pcap, ["-z", f"follow,tcp,raw,{stream}"], f"following TCP stream {stream} of", out_of_order, timeout)
    sides: tuple[list[str], list[str]] = ([], [])
    body = text.split("\nNode 1: ", 1)[-1].split("\n", 1)[-1]
    for line in body.splitlines():
        if line.startswith("="):
            break
        if line.strip():
            sides[line.startswith("\t")].append(line.strip())
    return bytes.fromhex("".join(sides[0])), bytes.fromhex("".join(sides[1]))
