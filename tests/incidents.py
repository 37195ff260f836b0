"""`stagewatch scan` then `stagewatch correlate` over crafted inputs, as an analyst runs them: the incidents'
JSON lines and the store they were built from. Shared by the correlation tests of each channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sensor.cli import main as cli_main


def scan_and_correlate(
    tmp_path: Path, rule_cache: Path, inputs: list[Path], *scan_flags: str, hostmap: str | None = None
) -> tuple[list[dict[str, Any]], Path]:
    """Scan `inputs` (home_net 10/8) into a fresh store, correlate (with `hostmap` as a CSV when given)."""
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n')
    store, out = tmp_path / "sw.db", tmp_path / "incidents.jsonl"
    scan = ["-q", "scan", *map(str, inputs), "--db", str(store), "--config", str(cfg), "--home-net", "10.0.0.0/8"]
    assert cli_main([*scan, *scan_flags]) == 0
    correlate = ["-q", "correlate", "--db", str(store), "--jsonl", str(out)]
    if hostmap is not None:
        hosts = tmp_path / "hosts.csv"
        hosts.write_text(hostmap)
        correlate += ["--host-map", str(hosts)]
    assert cli_main(correlate) == 0
    return [json.loads(line) for line in out.read_text().splitlines()], store


__all__ = ["scan_and_correlate"]
