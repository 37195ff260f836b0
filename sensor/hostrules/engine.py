"""Host events to host findings: every bundled Sigma rule (signatures/host/*.yml) over every event.

Severity starts from the rule's level and follows what the process did: compressing keeps it,
decompressing (a loader unpacking itself, Expand-Archive) drops it to a hunting level. The seed's
DetectionSource names are kept as `label`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sensor.config import bundled_signatures
from sensor.hostrules.operation import operation_of
from sensor.model import HostEvent, HostFinding
from sensor.names import stable_id

if TYPE_CHECKING:
    from sensor.hostrules.sigma import CompiledRule

# Namespace of host finding ids (UUIDv5), fixed forever so ids stay stable across versions.
HOST_NS = uuid.UUID("5c8f0d7a-2b1e-5d44-9e6f-8a3b2c1d0e9f")
LEVELS = {"informational": 10, "low": 30, "medium": 50, "high": 65, "critical": 80}
OPERATION_SEVERITY = {"compress": 0, "unknown": -10, "decompress": -40}


def bundled_host_rules() -> Path:
    return bundled_signatures() / "host"


class HostRules:
    """The compiled host rules of one run."""

    def __init__(self, observer: str, rules_dir: Path | None = None, extra: tuple[Path, ...] = ()) -> None:
        """`extra`: the analyst's Sigma files (--rules DIR), evaluated beside the bundled ones."""
        from sensor.hostrules.sigma import load_rules  # pySigma (~80 ms) only once host events are read

        folder = rules_dir if rules_dir is not None else bundled_host_rules()
        self.observer = observer
        self.rules: list[CompiledRule] = load_rules([*sorted(folder.glob("*.yml")), *extra])

    def check(self, event: HostEvent) -> Iterator[HostFinding]:
        """A HostFinding for each rule the event matches."""
        for rule in self.rules:
            if not rule.applies(event) or not rule.predicate(event):
                continue
            op = operation_of(event)
            severity = max(5, LEVELS.get(rule.level, 50) + OPERATION_SEVERITY[op])
            reasons = (f"rule:{rule.label}", f"operation:{op}")
            key = "\x1f".join((self.observer, event.source, event.record_id, event.action, rule.id))
            yield HostFinding(
                finding_id=stable_id(HOST_NS, key),
                event=event,
                rule_id=rule.id,
                rule=rule.title,
                label=rule.label,
                operation=op,
                severity=severity,
                techniques=rule.techniques or ("T1560.002",),
                reasons=reasons,
            )


__all__ = ["HostRules", "bundled_host_rules"]
