"""YARA-X: the rules in two scanners, since 2-byte atoms cost it its fast path (SIGNATURES.md §6.5)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import ClassVar

import yara_x

from sensor.detect.engines.base import EngineTimeout, Hit, RuleFiles, RuleMeta, engines
from sensor.detect.engines.cache import cached
from sensor.errors import RuleError
from sensor.model import Buffer


def _compile(sources: tuple[tuple[str, str], ...]) -> yara_x.Rules:
    compiler = yara_x.Compiler()
    for namespace, src in sources:
        compiler.new_namespace(namespace)
        try:
            compiler.add_source(src, origin=f"{namespace}.yar")
        except yara_x.CompileError as e:
            raise RuleError(f"signatures/{namespace}.yar", f"does not compile under yara-x: {e}") from e
    return compiler.build()


def _save(rules: yara_x.Rules, path: Path) -> None:
    with path.open("wb") as f:
        rules.serialize_into(f)


def _load(path: Path) -> yara_x.Rules:
    with path.open("rb") as f:
        return yara_x.Rules.deserialize_from(f)


@engines.register("yara-x")
class YaraXEngine:
    """Main rules and hot (zlib) rules scanned by two scanners; anchored rules by a third."""

    name: ClassVar[str] = "yara-x"

    def __init__(self, rules: RuleFiles, cache_dir: Path | None = None, timeout: int = 60) -> None:
        key = f"yara-x-{version('yara-x')}-{rules.digest[:32]}"
        self._scanners = []
        self.meta: dict[str, RuleMeta] = rules.meta
        for group, sources in (("main", rules.main), ("hot", rules.hot), ("head", rules.anchored)):
            if not sources:
                self._scanners.append(None)
                continue
            compiled = cached(cache_dir, f"{key}.{group}", lambda s=sources: _compile(s), _save, _load)
            scanner = yara_x.Scanner(compiled)
            scanner.set_timeout(timeout)
            self._scanners.append(scanner)
        self._main, self._hot, self._head = self._scanners

    def scan(self, data: Buffer) -> list[Hit]:
        if not isinstance(data, bytes):
            data = bytes(data)  # yara-x takes bytes only (SIGNATURES.md §6.5)
        out: list[Hit] = []
        for scanner in (self._main, self._hot):
            if scanner is None:
                continue
            try:
                results = scanner.scan(data)
            except yara_x.TimeoutError as e:
                raise EngineTimeout(str(e)) from e
            for rule in results.matching_rules:
                for pattern in rule.patterns:
                    out.extend(Hit(rule.identifier, m.offset) for m in pattern.matches)
        return out

    def scan_head(self, head: bytes) -> list[str]:
        if self._head is None:
            return []
        names = []
        for rule in self._head.scan(head).matching_rules:
            names.append(rule.identifier)
        return names
