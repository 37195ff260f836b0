"""The auditd parser against real audit logs (shared/hostevents/real) and crafted damaged ones.

Expectations for the recorded T1560.002 run come from its labels file (serials, commands, time
windows) and from plain regexes over the raw log, never from the parser's own output.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from pathlib import Path

import pytest

from sensor.errors import InputError
from sensor.hostevents.auditd import Auditd
from sensor.model import HostEvent
from sensor.stats import RunStats
from tests.conftest import SHARED, absent, requires

REAL = SHARED / "hostevents" / "real"
LOCAL = REAL / "local__auditd_atomic-T1560.002_debian12.log"
LABELS = REAL / "local__auditd_atomic-T1560.002_debian12.labels.json"
ARP = REAL / "otrf__linux_sh_arp_cache_auditd.log"
DD = REAL / "otrf__linux_sh_binary_padding_dd_auditd.log"
REAL_LOGS = (LOCAL, ARP, DD)

needs_real = requires(absent(*REAL_LOGS, LABELS))  # the shared corpus, never copied into the repo
# the harness took step times in user space; the kernel stamped some records up to 3 ms earlier
CLOCK_SLACK = 0.01


def parse(path: Path) -> tuple[list[HostEvent], RunStats]:
    stats = RunStats()
    events = list(Auditd().parse(str(path), stats, dt.UTC))
    return events, stats


def raw_serials(path: Path, pattern: str) -> set[int]:
    """Serials of raw log lines that match `pattern` (an oracle independent of the parser)."""
    out = set()
    for line in path.read_bytes().split(b"\n"):
        if re.search(pattern.encode(), line):
            out.add(int(re.search(rb"msg=audit\(\d+\.\d+:(\d+)\)", line).group(1)))
    return out


def raw_count(path: Path, pattern: str, serials: set[int]) -> int:
    """How many raw lines match `pattern` within the given serials."""
    n = 0
    for line in path.read_bytes().split(b"\n"):
        m = re.search(rb"msg=audit\(\d+\.\d+:(\d+)\)", line)
        if m and int(m.group(1)) in serials and re.search(pattern.encode(), line):
            n += 1
    return n


@pytest.fixture(scope="module")
def local() -> list[HostEvent]:
    events, stats = parse(LOCAL)
    assert stats.host["bad_records"] == 0
    assert stats.host["records"] == LOCAL.read_bytes().count(b"\n")
    assert stats.host["events"] == len(events)
    return events


@pytest.fixture(scope="module")
def steps() -> list[dict]:
    return json.loads(LABELS.read_text())


# ---- sniff -------------------------------------------------------------------------------------


@needs_real
@pytest.mark.parametrize("path", REAL_LOGS, ids=lambda p: p.name)
def test_sniff_real_logs(path: Path) -> None:
    assert Auditd.sniff(path.read_bytes()[: 64 * 1024], path.name)


@pytest.mark.parametrize(
    "head",
    [
        bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"),  # pcap
        b'{"type": "SYSCALL", "msg": "audit(1604994496.155:92733)", "pid": 1631}\n',  # JSON
        b'<?xml version="1.0"?>\n<Events><Event><System><EventID>1</EventID></System></Event></Events>\n',
        b"ElfFile\x00" + bytes(120),  # EVTX
        b"",
    ],
    ids=["pcap", "json", "xml", "evtx", "empty"],
)
def test_sniff_rejects_other_formats(head: bytes) -> None:
    assert not Auditd.sniff(head, "x.log")


def test_sniff_node_prefix() -> None:
    head = b'node=web-01 type=SYSCALL msg=audit(1700000000.001:5): arch=c000003e syscall=59 success=yes exe="/bin/ls"\n'
    assert Auditd.sniff(head, "audit.log")


# ---- the recorded T1560.002 run ----------------------------------------------------------------


@needs_real
def test_every_labelled_step(local: list[HostEvent], steps: list[dict]) -> None:
    labelled = {s for step in steps for s in step["audit_serials"]}
    assert {int(e.record_id) for e in local} <= labelled  # daemon and auditctl records give nothing
    for step in steps:
        serials = set(step["audit_serials"])
        mine = [e for e in local if int(e.record_id) in serials]
        procs = [e for e in mine if e.action == "process"]
        name = step["step"]
        for e in mine:
            assert step["time_start"] - CLOCK_SLACK <= e.ts <= step["time_end"] + CLOCK_SLACK, name
            assert (e.provider, e.source, e.user, e.host) == ("auditd", str(LOCAL), "artuser", None), name
        # one process event per successful execve, i.e. per EXECVE record of the step
        assert len(procs) == raw_count(LOCAL, r"^type=EXECVE ", serials) > 0, name
        assert all(e.code == "EXECVE" and e.image and e.pid and e.ppid for e in procs), name
        # the step's first serial is the failed execve of /usr/local/bin/sh: nothing from it
        first = min(serials)
        assert first in raw_serials(LOCAL, r"^type=SYSCALL .* success=no ")
        assert not [e for e in mine if int(e.record_id) == first], name
        # the next one is `sh -c <the labelled command>`, argv[2] decoded from hex
        sh = [e for e in procs if int(e.record_id) == first + 1]
        assert [e.command_line for e in sh] == [f'sh -c "{step["command"]}"'], name
        # /tmp files named on the command line were created (or, by a cleanup, deleted) by the step
        files = {(e.action, e.target_file) for e in mine if e.action != "process"}
        want = "file_delete" if step["label"] == "cleanup" else "file_create"
        for target in re.findall(r"/tmp/[\w.\-]+", step["command"]):
            assert (want, target) in files, (name, target)


@needs_real
def test_art1_gzip_process(local: list[HostEvent], steps: list[dict]) -> None:
    art1 = set(steps[0]["audit_serials"])
    procs = [e for e in local if int(e.record_id) in art1 and e.action == "process"]
    (py,) = [e for e in procs if Path(e.image).name.startswith("python3")]
    assert py.code == "EXECVE"
    assert py.image == "/usr/bin/python3.11"
    assert py.command_line.startswith('/bin/python3 -c "import gzip;')
    assert "gzip.GzipFile('/tmp/passwd.gz','wb',compresslevel=6)" in py.command_line
    assert py.user == "artuser"
    assert py.label == "art_exec"  # the audit rule key


@needs_real
@pytest.mark.parametrize(
    ("target", "interpreter"),
    [
        ("/tmp/passwd.gz", "python3"),
        ("/tmp/svc.zlib", "python3"),
        ("/tmp/hosts.json.gz", "node"),
        ("/tmp/hosts.gz", "perl"),
        ("/tmp/.cache_svc.xz", "python3"),  # stage.py: the import is not on any command line
    ],
)
def test_interpreter_file_creations(local: list[HostEvent], steps: list[dict], target: str, interpreter: str) -> None:
    (made,) = [e for e in local if e.action == "file_create" and e.target_file == target]
    assert made.code == "CREATE" and made.user == "artuser"
    assert Path(made.image).name.startswith(interpreter)
    # the pid is that of the interpreter the same step started
    (step,) = [s for s in steps if int(made.record_id) in s["audit_serials"]]
    starts = [
        e
        for e in local
        if e.action == "process" and int(e.record_id) in step["audit_serials"] and e.image == made.image
    ]
    assert [e.pid for e in starts] == [made.pid]


@needs_real
def test_failed_execve_gives_no_process(local: list[HostEvent]) -> None:
    failed = raw_serials(LOCAL, r"^type=SYSCALL .* success=no ")
    assert len(failed) == 20  # one before each step
    assert not [e for e in local if int(e.record_id) in failed]
    assert not [e for e in local if e.image in ("/usr/local/bin/sh", "/usr/bin/setpriv")]
    # the cached setpriv PROCTITLE of the first sh must not leak into its command line
    assert not [e for e in local if (e.command_line or "").startswith("setpriv")]


# ---- third-party RAW logs ----------------------------------------------------------------------


@needs_real
def test_otrf_arp_cache() -> None:
    events, stats = parse(ARP)
    assert stats.host["bad_records"] == 0 and stats.host["records"] == 12
    assert [(e.record_id, e.image, e.command_line, e.pid, e.ppid, e.user) for e in events] == [
        ("92733", "/usr/sbin/arp", "arp -a", 1631, 29002, "1000"),  # RAW format: no user names
        ("92734", "/bin/grep", "grep -v ^?", 1632, 29002, "1000"),
    ]
    assert events[0].ts == pytest.approx(1604994496.155)
    assert all(e.action == "process" and e.label is None for e in events)  # key=(null)


@needs_real
def test_otrf_dd() -> None:
    events, _ = parse(DD)
    assert [(e.image, e.command_line, e.pid) for e in events] == [("/bin/dd", "dd if=/dev/zero bs=1 count=1", 2168)]


# ---- crafted input -----------------------------------------------------------------------------


def hexs(s: str) -> str:
    return s.encode().hex().upper()


def execve_event(serial: int, argv: list[str], exe: str, pid: int = 100, node: str = "") -> list[str]:
    head = f"{node}type={{}} msg=audit(1700000000.{serial:03d}:{serial}): "
    args = " ".join(f"a{i}={hexs(a)}" if " " in a else f'a{i}="{a}"' for i, a in enumerate(argv))
    return [
        head.format("SYSCALL")
        + f'arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid={pid} uid=0 comm="x" exe="{exe}" key=(null)',
        head.format("EXECVE") + f"argc={len(argv)} {args}",
        head.format("CWD") + 'cwd="/root"',
        head.format("PROCTITLE") + "proctitle=" + hexs("\0".join(argv)),
    ]


def create_event(serial: int, name: str, pid: int = 100) -> list[str]:
    head = f"type={{}} msg=audit(1700000000.{serial:03d}:{serial}): "
    return [
        head.format("SYSCALL")
        + f'arch=c000003e syscall=257 success=yes exit=3 ppid=1 pid={pid} uid=0 comm="x" exe="/usr/bin/x"',
        head.format("CWD") + 'cwd="/root/work dir"',
        head.format("PATH") + f"item=0 name={hexs(name)} nametype=CREATE",
    ]


def write(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "audit.log"
    p.write_bytes(data)
    return p


def test_damaged_log_keeps_good_events(tmp_path: Path) -> None:
    garbage = bytes(random.Random(7).randrange(256) for _ in range(3000))
    good_a = execve_event(1, ["python3", "-c", "import gzip; print(1)"], "/usr/bin/python3")
    good_b = create_event(2, "out file.gz")
    broken = 'type=SYSCALL msg=audit(1700000000:3): arch=c000003e syscall=59 success=yes exe="/bin/ls"'
    cut = 'type=EXECVE msg=audit(1700000000.004:4): argc=2 a0="ls" a1="-l'
    data = (
        "\n".join(good_a).encode()
        + b"\n"
        + broken.encode()
        + b"\n"
        + garbage
        + b"\n"
        + "\n".join(good_b).encode()
        + b"\n"
        + cut.encode()  # the log ends mid-record
    )
    events, stats = parse(write(tmp_path, data))
    garbage_lines = sum(1 for seg in garbage.split(b"\n") if seg.strip())
    assert stats.host["bad_records"] == 1 + garbage_lines + 1
    assert [(e.action, e.command_line or e.target_file) for e in events] == [
        ("process", 'python3 -c "import gzip; print(1)"'),
        ("file_create", "/root/work dir/out file.gz"),  # relative hex name joined to the cwd
    ]
    assert stats.host["events"] == 2


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        list(Auditd().parse(str(tmp_path / "missing.log"), RunStats(), dt.UTC))


def test_node_prefix_late_records_and_split_args(tmp_path: Path) -> None:
    a = execve_event(1, ["tar", "-czf", "/tmp/x.tgz"], "/usr/bin/tar", pid=5, node="node=db-02 ")
    long_arg = "A" * 10 + " " + "B" * 10
    split = [
        "type=SYSCALL msg=audit(1700000000.002:2): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=6 uid=0 "
        f"exe={hexs('/opt/my tools/run')}",
        f'type=EXECVE msg=audit(1700000000.002:2): argc=2 a0="run" a1_len={len(long_arg)} a1[0]={hexs(long_arg[:12])}',
        f"type=EXECVE msg=audit(1700000000.002:2): a1[1]={hexs(long_arg[12:])}",
    ]
    # event 1's EXECVE arrives after event 2's records: it still joins event 1
    lines = [a[0], *split, a[1], a[2], a[3]]
    events, stats = parse(write(tmp_path, ("\n".join(lines) + "\n").encode()))
    assert stats.host["bad_records"] == 0
    assert [(e.host, e.image, e.pid, e.command_line) for e in events] == [
        ("db-02", "/usr/bin/tar", 5, "tar -czf /tmp/x.tgz"),
        (None, "/opt/my tools/run", 6, f'run "{long_arg}"'),
    ]


def test_proctitle_only_when_execve_missing(tmp_path: Path) -> None:
    lines = execve_event(1, ["id", "-u"], "/usr/bin/id")
    del lines[1]  # EXECVE record lost
    failed = [
        'type=SYSCALL msg=audit(1700000000.002:2): arch=c000003e syscall=59 success=no exit=-2 pid=7 exe="/bin/sh"',
        "type=PROCTITLE msg=audit(1700000000.002:2): proctitle=" + hexs("setpriv\0sh"),
    ]
    events, _ = parse(write(tmp_path, ("\n".join(lines + failed) + "\n").encode()))
    assert [(e.record_id, e.command_line) for e in events] == [("1", "id -u")]


def test_a_forged_argc_or_argument_index_costs_nothing() -> None:
    """Found by fuzzing (fuzz/corpus/hostevents/auditd-forged-argument-index): an argument numbered a1444...4
    with no argc made the parser count to that number. argv stops at the last argument present."""
    from sensor.hostevents.auditd import argv_of

    assert argv_of({"argc": "99999999999999", "a0": '"python3"', "a1": '"-c"'}) == ["python3", "-c"]
    assert argv_of({"a0": '"python3"', "a" + "4" * 40: '"-c"'}) == ["python3"]
    assert argv_of({"argc": "3", "a0": '"x"', "a2": '"z"'}) == ["x", "", "z"]  # a lost middle record stays empty
