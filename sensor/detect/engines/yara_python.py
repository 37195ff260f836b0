"""libyara through yara-python: zero-copy windows, the GIL released during scans."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import yara

from sensor.detect.engines.base import HEAD, EngineTimeout, Hit, RuleFiles, RuleMeta, engines
from sensor.detect.engines.cache import cached
from sensor.errors import RuleError
from sensor.model import Buffer


def _compile(sources: tuple[tuple[str, str], ...], where: str) -> yara.Rules:
    try:
        return yara.compile(sources=dict(sources))
    except yara.SyntaxError as e:
        raise RuleError(where, f"does not compile under yara-python: {e}") from e


@engines.register("yara-python")
class YaraPythonEngine:
    """All scan-anywhere rules in one compiled set; anchored rules in a second one."""

    name: ClassVar[str] = "yara-python"

    def __init__(self, rules: RuleFiles, cache_dir: Path | None = None, timeout: int = 60) -> None:
        key = f"yara-python-{yara.YARA_VERSION}-{rules.digest[:32]}"
        where = "signatures"
        self.timeout = timeout
        self._main = cached(
            cache_dir,
            key + ".main",
            lambda: _compile(rules.main + rules.hot, where),
            lambda r, p: r.save(str(p)),
            lambda p: yara.load(str(p)),
        )
        self._head = cached(
            cache_dir,
            key + ".head",
            lambda: _compile(rules.anchored, where),
            lambda r, p: r.save(str(p)),
            lambda p: yara.load(str(p)),
        )
        self.meta: dict[str, RuleMeta] = rules.meta

    def scan(self, data: Buffer, head: bool = False) -> list[Hit]:
        out: list[Hit] = []
        try:
            matches = self._main.match(data=data, timeout=self.timeout)
            if head:
                matches += self._head.match(data=bytes(data[:HEAD]), timeout=self.timeout)
        except yara.TimeoutError as e:
            raise EngineTimeout(str(e)) from e
        for m in matches:
            if not m.strings:  # condition-only (anchored) rule: a match at the object start
                out.append(Hit(m.rule, 0))
            for s in m.strings:
                out.extend(Hit(m.rule, i.offset) for i in s.instances)
        return out
