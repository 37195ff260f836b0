"""deploy/: the example configuration documents every setting with its default, and loads; the systemd units
grant each service only the capabilities it needs."""

from __future__ import annotations

import configparser
import re
from dataclasses import fields
from pathlib import Path

from sensor.config import Correlate, Limits, Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
EXAMPLE = DEPLOY / "stagewatch.toml"


def test_every_setting_is_documented():
    text = EXAMPLE.read_text()
    for f in [*fields(Limits), *fields(Correlate), *fields(Settings)]:
        if f.name not in ("limits", "correlate"):
            assert re.search(rf"^# {f.name} = ", text, re.M), f"{f.name} is not in {EXAMPLE.name}"


def test_the_example_loads_commented_and_uncommented(tmp_path):
    assert load_settings(EXAMPLE).limits == Limits()  # as shipped: all defaults
    active = re.sub(r"^# ([a-z_]+ = )", r"\1", EXAMPLE.read_text(), flags=re.M)
    path = tmp_path / "active.toml"
    path.write_text(active)
    s = load_settings(path)
    assert s.limits == Limits()  # the documented values are the defaults
    assert s.engine == Settings().engine and s.home_net == Settings().home_net and s.tz == "UTC"


def test_units_carry_only_the_capabilities_they_need():
    for name, caps in (
        ("stagewatch-live@.service", {"CAP_NET_RAW", "CAP_NET_ADMIN"}),
        ("stagewatch-watch.service", {"CAP_DAC_READ_SEARCH"}),
    ):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read_string((DEPLOY / name).read_text())
        svc = unit["Service"]
        assert set(svc["AmbientCapabilities"].split()) == caps == set(svc["CapabilityBoundingSet"].split())
        assert svc["User"] == "stagewatch" and svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
        assert svc["ExecReload"].endswith("kill -HUP $MAINPID")


def test_the_units_and_integration_notes_name_flags_that_exist():
    import shlex

    from sensor.cli import build_parser

    commands = []
    for unit in DEPLOY.glob("*.service"):
        text = unit.read_text().replace("\\\n", " ")
        commands += [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ExecStart=")]
    for doc in DEPLOY.rglob("*.md"):
        commands += [line for line in doc.read_text().splitlines() if line.startswith("stagewatch ")]
    assert len(commands) >= 4
    for command in commands:
        argv = shlex.split(command.replace("%i", "eth1"))[1:]
        build_parser().parse_args(argv)  # exits (SystemExit) on an unknown flag
