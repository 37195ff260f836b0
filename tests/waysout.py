"""One capture of four ways out (an HTTP upload, an HTTP download, an SMTP attachment, an FTP STOR) from
CLIENT to OUTSIDE, with the constants another sensor's logs of it need: the bridges' tests scan the capture
and what Suricata or Zeek wrote about it, and compare."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests import appbuild as ab
from tests.builders import HOSTS, gzip_plain, sample_text, tar_archive, zip_archive
from tests.netbuild import BASE_TIME, segments, write_pcap

HOME = ("10.0.0.0/8",)
CLIENT, OUTSIDE = "10.0.0.10", "198.51.100.25"
UPLOAD = gzip_plain(sample_text(60_000, 31))
DOWNLOAD = zip_archive({"tools/readme.txt": sample_text(20_000, 32)})
ATTACHED = zip_archive({"hosts": HOSTS})
STORED = tar_archive({"etc/hosts": HOSTS}, "bz2")
MEMBERS = {"upload": UPLOAD, "download": DOWNLOAD, "attachment": ATTACHED, "ftp": STORED}
# connection: (client port, server port, start offset from BASE_TIME)
PORTS = {"upload": (49152, 80, 0), "download": (49160, 80, 5), "attachment": (49170, 25, 10), "ftp": (49181, 50000, 15)}
FTP_CONTROL = (49180, 21)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(folder: Path) -> Path:
    """The capture, as ways-out.pcap in `folder`."""
    up = ab.http_request("POST", "/upload/rows.gz", "drop.example", UPLOAD, [("Content-Type", "application/gzip")])
    http_up = ab.http_conversation([(up, ab.http_response(200, b"ok"))], client=CLIENT, server=OUTSIDE,
                                   client_port=PORTS["upload"][0], start=BASE_TIME)  # fmt: skip
    get = ab.http_request("GET", "/files/pack.zip", "cdn.example")
    down = ab.http_response(200, DOWNLOAD, [("Content-Type", "application/zip")])
    http_down = ab.http_conversation([(get, down)], client=CLIENT, server=OUTSIDE,
                                     client_port=PORTS["download"][0], start=BASE_TIME + 5)  # fmt: skip
    msg = ab.smtp_message("bob@corp.example", ["drop@mail.example"], "Q3", "see attached\r\n",
                          [ab.Attachment("stage_lib.zip", ATTACHED, "application", "zip")])  # fmt: skip
    smtp = ab.smtp_session([("bob@corp.example", ["drop@mail.example"], msg)], client=CLIENT, server=OUTSIDE,
                           client_port=PORTS["attachment"][0], start=BASE_TIME + 10)  # fmt: skip
    ftp = ab.ftp_session([ab.Transfer("STOR", "out/stage.tar.bz2", STORED)], client=CLIENT, server=OUTSIDE,
                         client_port=FTP_CONTROL[0], data_port=PORTS["ftp"][1], start=BASE_TIME + 15)  # fmt: skip
    pkts = segments(http_up) + segments(http_down) + segments(smtp) + ab.ftp_packets(ftp)
    pkts.sort(key=lambda p: float(p.time))
    return write_pcap(folder / "ways-out.pcap", pkts)


__all__ = ["ATTACHED", "CLIENT", "DOWNLOAD", "HOME", "MEMBERS", "OUTSIDE", "PORTS", "STORED", "UPLOAD", "sha", "write"]
