"""`stagewatch rules export`: the bundled host Sigma rules converted by each SIEM backend (skipped when absent)."""

from __future__ import annotations

import pytest

from sensor.cli import main
from sensor.hostrules import export
from sensor.hostrules.export import TARGETS, ExportError, Target, export_rules, load_backend, render

# target -> (backend module, field names that must appear in the SIEM's naming)
EXPECTED = {
    "splunk": ("sigma.backends.splunk", ("ImageLoaded IN (", "Image IN (", "CommandLine IN (", "TargetFilename IN (")),
    "elastic": (
        "sigma.backends.elasticsearch",
        ("file.path:", "process.executable", "process.command_line:", "powershell.file.script_block_text:"),
    ),
    "qradar-aql": ("sigma.backends.QRadarAQL", ('"Process Path"', "LOWER(Command)", "Filename", "devicetype=12")),
}
RULES = 6  # signatures/host/t1560_002_archive_via_library.yml


def backend_or_skip(target: str) -> None:
    module, _ = EXPECTED[target]
    extra = TARGETS[target].extra
    pytest.importorskip(
        module, reason=f"{TARGETS[target].distribution} not installed (pip install 'stagewatch[{extra}]')"
    )
    try:
        load_backend(target)
    except ExportError as e:  # installed, but not runnable beside this pySigma
        pytest.skip(str(e))


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_export_one_query_per_rule_in_the_targets_names(target: str) -> None:
    backend_or_skip(target)
    exported = export_rules(target)
    assert len(exported) == RULES
    assert all(len(r.queries) == 1 and r.queries[0].strip() for r in exported)
    assert {r.label for r in exported} >= {"CompressionDllLoad", "PowerShellLibraryCompression"}  # stagewatch_label
    text = render(exported)
    queries = [line for line in text.splitlines() if not line.startswith("# ")]
    assert len(queries) == RULES
    for field in EXPECTED[target][1]:
        assert field in text, field
    low = "\n".join(queries).lower().replace("\\-", "-").replace("\\ ", " ")  # Lucene escapes - and space
    assert "zlib1.dll" in low and "compress-archive" in low and "import zlib" in low
    if target == "elastic":  # rules without `product: windows` get ECS names as well
        assert not any(f in text for f in ("CommandLine:", "Image:", "TargetFilename:"))


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_cli_writes_the_queries_to_a_file(target: str, tmp_path, capsys) -> None:
    backend_or_skip(target)
    out = tmp_path / f"{target}.txt"
    assert main(["rules", "export", "--target", target, "--output", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert sum(not line.startswith("# ") for line in lines) == RULES
    assert capsys.readouterr().out == ""


def test_cli_rules_folder_and_stdout(tmp_path, capsys) -> None:
    target = next((t for t in sorted(EXPECTED) if _runs(t)), None)
    if target is None:
        pytest.skip("no export backend installed (pip install 'stagewatch[splunk]')")
    (tmp_path / "one.yml").write_text(
        "title: t\nid: 6d0a3c1e-8f53-4a51-9d2b-1c4b5e7f0aff\nstagewatch_label: Mine\n"
        "logsource: {product: windows, category: process_creation}\n"
        "detection: {sel: {CommandLine|contains: Compress-Archive}, condition: sel}\n",
        encoding="utf-8",
    )
    assert main(["rules", "export", "--target", target, "--rules", str(tmp_path), "--output", "-"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("# 6d0a3c1e-8f53-4a51-9d2b-1c4b5e7f0aff Mine: t")
    (tmp_path / "two.yml").write_text("title: broken\ndetection: {condition: nothing}\n", encoding="utf-8")
    assert main(["rules", "export", "--target", target, "--rules", str(tmp_path)]) == 1
    assert "two.yml" in capsys.readouterr().err


def _runs(target: str) -> bool:
    try:
        load_backend(target)
    except ExportError:
        return False
    return True


def test_unknown_target_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["rules", "export", "--target", "arcsight"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_missing_backend_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    missing = Target("sigma.backends.nosuchsiem:NoBackend", (), "nosuch", "pysigma-backend-nosuchsiem")
    monkeypatch.setitem(TARGETS, "nosuch", missing)
    assert main(["rules", "export", "--target", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuch: no pySigma backend: install stagewatch[nosuch]" in err[0]


def test_ibm_qradar_backend_is_named_as_the_conflict(monkeypatch) -> None:
    """IBM's backend (pySigma<0.12) shadows the community one: say so before importing anything."""
    real = export._version
    monkeypatch.setattr(export, "_version", lambda d: "0.3.2" if d == "pysigma-backend-qradar-aql" else real(d))
    with pytest.raises(ExportError) as exc:
        load_backend("qradar-aql")
    msg = str(exc.value)
    assert "pysigma-backend-qradar-aql 0.3.2" in msg and "pip uninstall pysigma-backend-qradar-aql" in msg
    assert "install stagewatch[qradar]" in msg and "\n" not in msg
