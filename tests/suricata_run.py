"""Runs the real Suricata (7, from Debian's bookworm-backports; make test installs it) over a capture with eve
fileinfo/flow/tls records and file-store v2 on, and gives its log folder: what a Suricata shop's sensor writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

DEFAULT_CONFIG = Path("/etc/suricata/suricata.yaml")


def missing() -> str | None:
    """Why Suricata cannot run here, or None."""
    if shutil.which("suricata") is None or not DEFAULT_CONFIG.exists():
        return "suricata is not installed (make test installs it from bookworm-backports)"
    return None


def config(folder: Path, home_net: str = "[10.0.0.0/8]", filestore: bool = True, write_fileinfo: bool = True) -> Path:
    """The packaged suricata.yaml with only eve-log (fileinfo with hashes, flow, tls, http, smtp, ftp) and
    file-store v2 (every file, force-filestore) left among the outputs, and no rules."""
    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text().split("\n", 1)[1])  # the "%YAML 1.1" line PyYAML refuses
    outputs = []
    for out in cfg["outputs"]:
        name = next(iter(out))
        if name == "eve-log":
            out[name].update(enabled=True, filename="eve.json", **{"community-id": True})
            files = {"files": {"force-magic": False, "force-hash": ["sha256", "md5"]}}
            out[name]["types"] = ["flow", {"http": {"extended": True}}, files, "smtp", "ftp", "tls"]
            outputs.append(out)
        elif name == "file-store" and filestore:
            out[name] = {"version": 2, "enabled": True, "dir": "filestore", "write-fileinfo": write_fileinfo,
                         "force-filestore": True, "force-hash": ["sha256", "md5"]}  # fmt: skip
            outputs.append(out)
    cfg["outputs"] = outputs
    cfg["rule-files"] = []
    cfg["vars"]["address-groups"]["HOME_NET"] = home_net
    cfg["logging"] = {"default-log-level": "warning", "outputs": [{"console": {"enabled": True}}]}
    cfg.setdefault("app-layer", {}).setdefault("protocols", {}).setdefault("ftp", {})["enabled"] = "yes"
    path = folder / "suricata.yaml"
    path.write_text("%YAML 1.1\n---\n" + yaml.safe_dump(cfg, sort_keys=False))
    return path


def run(pcap: Path, out: Path, **kw: object) -> Path:
    """Suricata over `pcap` in offline mode; its log folder (eve.json, filestore/)."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        "suricata",
        "-c",
        str(config(out, **kw)),
        "-r",
        str(pcap),
        "-l",
        str(out),
        "-k",
        "none",
        "--runmode",
        "single",
    ]  # type: ignore[arg-type]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"suricata failed ({done.returncode}): {done.stderr[-600:]}")
    (out / "suricata.yaml").unlink()
    return out


__all__ = ["config", "missing", "run"]
