"""IMAP and POP3 (issue "More ways out", item 3): a draft saved by IMAP APPEND (synchronising and LITERAL+
literals), messages read down by IMAP FETCH (BODY[], BODY.PEEK[], RFC822, a section) and POP3 RETR
(dot-stuffed), each MIME part an object named by its filename with the right direction. Conversations
crafted with tests/appbuild.py, packets by scapy, scanned through the real pipeline."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from subprocess import DEVNULL

from tests import appbuild as ab
from tests import netns
from tests.builders import gzip_named, sample_text, xz_member, zip_archive, zlib_member
from tests.conftest import need
from tests.netbuild import Conv, segments, write_pcap
from tests.test_http import run_pcap

CLIENT, SERVER = "10.0.0.10", "203.0.113.25"
XZ = xz_member(sample_text(9000, 31))
ZIP = zip_archive({"q3/ledger.csv": sample_text(20_000, 32)})
GZ = gzip_named(sample_text(7000, 33), "rows.csv")
ZL = zlib_member(sample_text(6000, 34))


def _message(subject: str, *attachments: tuple[str, bytes]) -> bytes:
    return ab.smtp_message(
        "bob@corp.example", ["drop@mail.example"], subject, "see attached",
        [ab.Attachment(name, data) for name, data in attachments],
    )  # fmt: skip


def _run(tmp_path, rule_cache, port: int, sends: list[tuple[str, bytes]]):
    conv = Conv(client=CLIENT, client_port=50123, server=SERVER, server_port=port, sends=sends)
    return run_pcap(rule_cache, write_pcap(tmp_path / "mail.pcap", segments(conv)))


def test_imap_append_with_a_synchronising_and_a_literal_plus_literal(tmp_path, rule_cache):
    first, second = _message("q3", ("stage.xz", XZ)), _message("q4", ("stage.zip", ZIP))
    sends = [
        ("s2c", b"* OK [CAPABILITY IMAP4rev1 LITERAL+] Dovecot ready.\r\n"),
        ("c2s", b"a1 LOGIN {3}\r\n"),
        ("s2c", b"+ OK\r\n"),
        ("c2s", b"bob {6}\r\n"),
        ("s2c", b"+ OK\r\n"),
        ("c2s", b"secret\r\n"),
        ("s2c", b"a1 OK Logged in\r\n"),
        ("c2s", b'a2 APPEND Drafts (\\Draft) "06-Dec-2026 10:00:00 +0000" {%d}\r\n' % len(first)),
        ("s2c", b"+ OK\r\n"),
        ("c2s", first + b"\r\n"),
        ("s2c", b"a2 OK [APPENDUID 1 1] Append completed.\r\n"),
        ("c2s", b"a3 APPEND Drafts {%d+}\r\n" % len(second) + second + b"\r\n"),
        ("s2c", b"a3 OK [APPENDUID 1 2] Append completed.\r\n"),
        ("c2s", b"a4 LOGOUT\r\n"),
        ("s2c", b"* BYE\r\na4 OK\r\n"),
    ]
    run = _run(tmp_path, rule_cache, 143, sends)
    xz, zp = run.one(XZ), run.one(ZIP)
    assert (xz.name, zp.name) == ("stage.xz", "stage.zip")
    assert xz.kind.value == "alert" and xz.origin.direction == "outbound" and xz.origin.protocol == "imap"
    assert xz.encoding == ("mime", "base64") and xz.app is not None and xz.app.command == "APPEND"
    assert xz.app.subject == "q3" and zp.app is not None and zp.app.subject == "q4"
    assert run.stats.app["imap.messages"] == 2


def test_imap_fetch_of_a_whole_message_and_of_a_section(tmp_path, rule_cache):
    whole, other = _message("pay", ("rows.gz", GZ)), _message("old", ("old.xz", XZ))
    sends = [
        ("s2c", b"* OK IMAP4rev1 ready\r\n"),
        ("c2s", b"a1 SELECT INBOX\r\n"),
        ("s2c", b"* 2 EXISTS\r\na1 OK [READ-WRITE] Select completed.\r\n"),
        ("c2s", b"a2 FETCH 1 (FLAGS BODY.PEEK[])\r\n"),
        ("s2c", b"* 1 FETCH (FLAGS (\\Seen) BODY[] {%d}\r\n" % len(whole) + whole + b")\r\na2 OK Fetch completed.\r\n"),
        ("c2s", b"a3 UID FETCH 2 (RFC822)\r\n"),
        ("s2c", b"* 2 FETCH (UID 2 RFC822 {%d}\r\n" % len(other) + other + b")\r\na3 OK\r\n"),
        ("c2s", b"a4 FETCH 1 (BODY[3])\r\n"),
        ("s2c", b"* 1 FETCH (BODY[3] {%d}\r\n" % len(ZL) + ZL + b")\r\na4 OK\r\n"),
    ]
    run = _run(tmp_path, rule_cache, 143, sends)
    gz, xz, zl = run.one(GZ), run.one(XZ), run.one(ZL)
    assert (gz.name, xz.name) == ("rows.gz", "old.xz")
    assert gz.origin.direction == "inbound" and gz.kind.value == "event" and gz.app.command == "FETCH"
    assert zl.encoding == () and zl.origin.protocol == "imap"
    assert run.stats.app["imap.messages"] == 2 and run.stats.app["imap.sections"] == 1


def test_imap_starttls_makes_the_rest_ciphertext(tmp_path, rule_cache):
    late = _message("late", ("late.xz", XZ))
    sends = [
        ("s2c", b"* OK ready\r\n"),
        ("c2s", b"a1 STARTTLS\r\n"),
        ("s2c", b"a1 OK Begin TLS negotiation now.\r\n"),
        ("c2s", b"\x16\x03\x01\x00\xa5" + bytes(165)),
        ("c2s", b"a2 APPEND Drafts {%d+}\r\n" % len(late) + late),  # as if: it would be inside TLS
    ]
    run = _run(tmp_path, rule_cache, 143, sends)
    assert run.stats.app["imap.starttls"] == 1 and run.stats.app["imap.encrypted_bytes"] > 0
    assert run.stats.app["imap.messages"] == 0


def test_pop3_retr_dot_stuffed_and_pipelined(tmp_path, rule_cache):
    first = _message("one", ("rows.gz", GZ))
    second = _message("two", ("stage.zip", ZIP)).replace(b"\r\nsee attached", b"\r\n.see attached")
    sends = [
        ("s2c", b"+OK POP3 ready\r\n"),
        ("c2s", b"USER bob\r\n"),
        ("s2c", b"+OK\r\n"),
        ("c2s", b"PASS secret\r\n"),
        ("s2c", b"+OK Logged in.\r\n"),
        ("c2s", b"CAPA\r\nLIST\r\nRETR 1\r\nRETR 2\r\n"),
        ("s2c", b"+OK\r\nTOP\r\nUIDL\r\nPIPELINING\r\n.\r\n+OK 2 messages\r\n1 900\r\n2 30000\r\n.\r\n"),
        ("s2c", b"+OK %d octets\r\n" % len(first) + ab.dot_stuff(first)),
        ("s2c", b"+OK %d octets\r\n" % len(second) + ab.dot_stuff(second)),
        ("c2s", b"QUIT\r\n"),
        ("s2c", b"+OK Logging out.\r\n"),
    ]
    run = _run(tmp_path, rule_cache, 110, sends)
    gz, zp = run.one(GZ), run.one(ZIP)
    assert (gz.name, zp.name) == ("rows.gz", "stage.zip")
    assert gz.origin.direction == "inbound" and gz.origin.protocol == "pop3" and gz.app.command == "RETR"
    assert run.stats.app["pop3.messages"] == 2
    recorded = {o.sha256 for o in run.objects if o.layers == ()}
    assert hashlib.sha256(second).hexdigest() in recorded  # unstuffed: the message as it was stored


# -- real servers: Dovecot (IMAP and POP3) in a network namespace, Python's imaplib and poplib ---------------

DOVECOT = """
protocols = imap pop3
listen = {server}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = static
  args = password=secret
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
"""

CLIENT_SCRIPT = r"""
import imaplib, poplib, socket, sys, time
from pathlib import Path

root = Path(sys.argv[1])
first, second = (root / "first.eml").read_bytes(), (root / "second.eml").read_bytes()
CLIENT, SERVER = "10.0.0.10", "203.0.113.80"

class Imap(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(CLIENT, 0))

class Pop(poplib.POP3):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(CLIENT, 0))

for _ in range(100):  # dovecot starting
    try:
        socket.create_connection((SERVER, 143), 1).close()
        break
    except OSError:
        time.sleep(0.05)
imap = Imap(SERVER, 143)
imap.login("bob", "secret")
assert imap.append("INBOX", r"(\Draft)", None, first)[0] == "OK"
assert imap.append("INBOX", None, None, second)[0] == "OK"
imap.select("INBOX")
typ, data = imap.fetch("1", "(BODY.PEEK[])")
assert typ == "OK" and data[0][1] == first, data
imap.logout()
pop = Pop(SERVER, 110)
pop.user("bob")
pop.pass_("secret")
lines = pop.retr(2)[1]
assert b"\r\n".join(lines) + b"\r\n" == second
pop.quit()
"""


def _log(root: Path) -> str:
    log = root / "dovecot.log"
    return log.read_text(errors="replace") if log.exists() else "(no dovecot log)"


def test_dovecot_imap_append_fetch_and_pop3_retr(tmp_path, rule_cache):
    """Dovecot serves IMAP and POP3; imaplib APPENDs two drafts (synchronising literals) and FETCHes the first,
    poplib RETRs the second: the APPENDs are outbound, the FETCH and RETR inbound, each attachment found."""
    need(netns.missing() or (None if shutil.which("dovecot") else "dovecot is not installed (make test installs it)"))
    root = Path(tempfile.mkdtemp(prefix="sw-dovecot-"))  # outside pytest's 0700 tree: dovecot's users read it
    try:
        os.chmod(root, 0o755)
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir()
        shutil.chown(root / "mail", "dovecot", "dovecot")
        first = _message("q3", ("stage.xz", XZ))
        second = _message("q4", ("stage.zip", ZIP))
        (root / "first.eml").write_bytes(first)
        (root / "second.eml").write_bytes(second)
        (root / "dovecot.conf").write_text(DOVECOT.format(server=netns.SERVER, root=root))
        (root / "client.py").write_text(CLIENT_SCRIPT)
        pcap = tmp_path / "mail.pcap"
        with netns.loopback_capture(pcap, "tcp port 143 or tcp port 110") as inside:
            # it daemonizes: no pipes (it would hold them open), its errors go to its log
            daemon = inside(["dovecot", "-c", str(root / "dovecot.conf")], stdout=DEVNULL, stderr=DEVNULL)
            assert daemon.returncode == 0, _log(root)
            try:
                done = inside(
                    [sys.executable, str(root / "client.py"), str(root)], capture_output=True, text=True, timeout=60
                )
                assert done.returncode == 0, done.stderr + _log(root)
            finally:
                inside(["doveadm", "-c", str(root / "dovecot.conf"), "stop"], stdout=DEVNULL, stderr=DEVNULL)
                inside(["pkill", "-f", str(root / "dovecot.conf")], stdout=DEVNULL, stderr=DEVNULL)
        run = run_pcap(rule_cache, pcap)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    up = {(f.name, f.origin.direction, f.origin.protocol, f.app.command) for f in run.of(XZ) + run.of(ZIP) if f.app}
    assert ("stage.xz", "outbound", "imap", "APPEND") in up and ("stage.zip", "outbound", "imap", "APPEND") in up
    assert ("stage.xz", "inbound", "imap", "FETCH") in up
    assert ("stage.zip", "inbound", "pop3", "RETR") in up


def test_the_command_is_on_the_finding_record(tmp_path, rule_cache):
    from sensor.output.ecs import finding_record

    msg = _message("q5", ("stage.xz", XZ))
    sends = [("s2c", b"* OK ready\r\n"), ("c2s", b"a1 APPEND Drafts {%d+}\r\n" % len(msg) + msg + b"\r\n")]
    rec = finding_record(_run(tmp_path, rule_cache, 143, sends).one(XZ))
    assert rec["imap"] == {"command": "APPEND"} and rec["email"]["subject"] == "q5"
    assert rec["network"]["protocol"] == "imap" and rec["file"]["name"] == "stage.xz"
