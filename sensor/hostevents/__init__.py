"""Host telemetry: parsers that turn event logs into HostEvents (Sysmon, Security, PowerShell, auditd, SIEM)."""

from sensor.hostevents.base import HEAD_BYTES, BadRecords, Parser, parse_time, parsers
from sensor.registry import import_submodules

NOT_PLUGINS = ("base", "fields", "sniff")
import_submodules(__name__, __path__, skip=NOT_PLUGINS)

__all__ = ["HEAD_BYTES", "NOT_PLUGINS", "BadRecords", "Parser", "parse_time", "parsers"]
