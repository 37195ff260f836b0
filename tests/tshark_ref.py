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
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
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


def _errors(stderr: str) -> list[str]:
    """The stderr lines that report a problem (not the running-as-root notice, not a cut-short capture)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and _ROOT_WARNING not in ln and _CUT_SHORT not in ln]


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
    fresh folder under ``workdir`` (tshark numbers repeated names against what the folder already holds) and
    an empty configuration folder, so personal Wireshark preferences cannot change the result. The exported
    files stay in DIR for inspection. Raises TsharkError naming the capture when tshark is missing, fails,
    or runs past ``timeout`` seconds; a capture whose last packet is cut short is not a failure.
    """
    if proto not in PROTOCOLS:
        raise ValueError(f"unknown export-objects protocol {proto!r} (one of {', '.join(PROTOCOLS)})")
    exe = shutil.which(TSHARK)
    if exe is None:
        raise TsharkError(f"tshark is not installed: cannot export {proto} objects of {pcap}")
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{pcap.name}.{proto}.", dir=workdir))
    out_dir, config_dir = run_dir / "objects", run_dir / "config"
    out_dir.mkdir()
    config_dir.mkdir()
    cmd = [exe, "-r", str(pcap), "-q"]
    if out_of_order:
        cmd += ["-o", "tcp.reassemble_out_of_order:TRUE"]
    cmd += ["--export-objects", f"{proto},{out_dir}"]
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(config_dir))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TsharkError(f"tshark timed out after {timeout:g} s exporting {proto} objects of {pcap}") from exc
    except OSError as exc:
        raise TsharkError(f"tshark could not be run for {pcap}: {exc}") from exc
    errors = _errors(done.stderr)
    if done.returncode != 0 and (errors or _CUT_SHORT not in done.stderr):
        detail = "; ".join(errors) or f"exit status {done.returncode}"
        raise TsharkError(f"tshark failed exporting {proto} objects of {pcap}: {detail}")
    objects = []
    for path in sorted(out_dir.iterdir()):
        data = path.read_bytes()
        objects.append(RefObject(proto, path.name, len(data), hashlib.sha256(data).hexdigest(), path))
    return objects
