"""YARA-X: the rules in two scanners, since 2-byte atoms cost it its fast path (SIGNATURES.md §6.5)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import yara_x

from sensor.detect.engines.base import HEAD, EngineTimeout, Hit, RuleFiles, RuleMeta, engines
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


SMALL = 256 * 1024  # below this, one scanner with every rule: per-call overhead beats the SIMD split


@engines.register("yara-x")
class YaraXEngine:
    """Big buffers: main and hot (zlib) rules in two scanners, anchored rules on the head apart.

    Small buffers (most network objects): one scanner holding every rule, one call.
    """

    name: ClassVar[str] = "yara-x"

    def __init__(self, rules: RuleFiles, cache_dir: Path | None = None, timeout: int = 60) -> None:
        key = f"yara-x-{_build_id()}-{rules.digest[:32]}"
        self.meta: dict[str, RuleMeta] = rules.meta
        groups = {
            "main": rules.main,
            "hot": rules.hot,
            "head": rules.anchored,
            "small": rules.main + rules.hot,
            "small-head": rules.main + rules.hot + rules.anchored,
        }
        self._scanners: dict[str, yara_x.Scanner | None] = {}
        for group, sources in groups.items():
            if not sources:
                self._scanners[group] = None
                continue
            compiled = cached(cache_dir, f"{key}.{group}", lambda s=sources: _compile(s), _save, _load)
            scanner = yara_x.Scanner(compiled)
            scanner.set_timeout(timeout)
            self._scanners[group] = scanner

    def scan(self, data: Buffer, head: bool = False) -> list[Hit]:
        if not isinstance(data, bytes):
            data = bytes(data)  # yara-x takes bytes only (SIGNATURES.md §6.5)
        sc = self._scanners
        if len(data) <= SMALL:
            plan = [(sc["small-head" if head else "small"], data)]
        else:
            plan = [(sc["main"], data), (sc["hot"], data)]
            if head:
                plan.append((sc["head"], data[:HEAD]))
        out: list[Hit] = []
        for scanner, buf in plan:
            if scanner is None:
                continue
            try:
                results = scanner.scan(buf)
            except yara_x.TimeoutError as e:
                raise EngineTimeout(str(e)) from e
            for rule in results.matching_rules:
                if not rule.patterns:  # condition-only (anchored) rule: a match at the object start
                    out.append(Hit(rule.identifier, 0))
                for pattern in rule.patterns:
                    out.extend(Hit(rule.identifier, m.offset) for m in pattern.matches)
        return out


def _build_id() -> str:
    """Which yara-x build compiled the cached rules: its native module's size and mtime. An upgrade changes
    them; importlib.metadata.version() gives the same answer but costs 10-20 ms of every start."""
    st = os.stat(yara_x.yara_x.__file__)
    return f"{st.st_size:x}{st.st_mtime_ns:x}"
