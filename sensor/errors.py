"""Exception tree: every error says where (file, record or offset) and what."""

from __future__ import annotations


class SensorError(Exception):
    """Base error; `str()` is the one-line message shown to the analyst."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}")
        self.where = where
        self.what = what


class InputError(SensorError):
    """An input that cannot be read or is not what it claims to be; `reason` is its counter name."""

    def __init__(self, where: str, what: str, reason: str = "error") -> None:
        super().__init__(where, what)
        self.reason = reason


class ConfigError(SensorError):
    """A bad configuration file or flag value."""


class RuleError(SensorError):
    """A YARA rule file that does not compile or lacks required metadata."""


class StoreError(SensorError):
    """The findings store cannot be opened or written."""


class NothingProcessed(SensorError):
    """Every input failed; the CLI maps this to exit status 1."""


class RegistryError(Exception):
    """A plug-in registered twice or looked up under an unknown name."""
