"""stagewatch: finds data compressed by libraries (MITRE ATT&CK T1560.002) on disk and on the wire."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from sensor.config import Settings, load_settings
    from sensor.model import Finding
    from sensor.pipeline import scan_paths
    from sensor.stats import RunStats

logger.disable("sensor")  # a library stays quiet; the CLI enables its own stderr sink

__all__ = ["Finding", "RunStats", "Settings", "load_settings", "scan_paths"]
__version__ = "0.1.0"

# The public API is imported on first use: `import sensor.cli` (every `stagewatch` start) must not pay for
# the whole pipeline (detector, network scanner, host rules) before it knows the command.
_LAZY = {
    "Finding": "sensor.model",
    "RunStats": "sensor.stats",
    "Settings": "sensor.config",
    "load_settings": "sensor.config",
    "scan_paths": "sensor.pipeline",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - PEP 562: whatever the named attribute is
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sensor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
