"""Read the tuning YAML with the line of every entry, so each mistake is reported as file:line."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

from sensor.errors import ConfigError


@functools.cache
def _line_loader() -> type:
    """SafeLoader that records each mapping's 1-based line under the key `__line__` (yaml is imported only
    when a tuning file is read: a scan without --suppress does not pay for it)."""
    import yaml

    class LineLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            mapping = super().construct_mapping(node, deep=deep)
            mapping["__line__"] = node.start_mark.line + 1
            return mapping

    return LineLoader


def read_yaml(path: Path) -> dict[str, Any]:
    """The file's top-level mapping; unreadable or malformed YAML is a ConfigError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), f"cannot read: {e}") from None
    import yaml

    try:
        data = yaml.load(text, Loader=_line_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(where, f"invalid YAML: {e.problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(str(path), f"invalid YAML: {e}") from None
    except (ValueError, TypeError, RecursionError) as e:  # PyYAML's own: a date like 2026-13-01, deep nesting
        raise ConfigError(str(path), f"invalid YAML: {type(e).__name__}: {e}") from None
    if data is None:
        return {"__line__": 1}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1", "expected a mapping with `suppress:` and/or `thresholds:`")
    return data


def expiry(value: Any, where: str) -> float | None:
    """An entry's `expires`: a date (the end of that day, UTC) or an ISO time; None when absent."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return stamp.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.max, dt.UTC).timestamp()
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(where, f"expires: {value!r} is not a date (2027-01-31) or an ISO time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


__all__ = ["expiry", "read_yaml"]
