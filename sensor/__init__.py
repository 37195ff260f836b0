"""stagewatch: finds data compressed by libraries (MITRE ATT&CK T1560.002) on disk and on the wire."""

from loguru import logger

from sensor.config import Settings, load_settings
from sensor.model import Finding
from sensor.pipeline import scan_paths
from sensor.stats import RunStats

logger.disable("sensor")  # a library stays quiet; the CLI enables its own stderr sink

__all__ = ["Finding", "RunStats", "Settings", "load_settings", "scan_paths"]
__version__ = "0.1.0"
