"""The rule-engine seam: compile the rule files once, scan a buffer, return every string hit."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple, Protocol

from sensor.config import bundled_signatures
from sensor.errors import RuleError
from sensor.model import Buffer, Format
from sensor.registry import Registry

ROLES = ("candidate", "hint", "flag", "anchored")
HEAD = 4096  # bytes of an object's start the anchored (condition-only) rules look at
_HOT = re.compile(r'^\s*hot\s*=\s*"true"', re.M)
_ANCHORED = re.compile(r'^\s*role\s*=\s*"anchored"', re.M)
_RULE_META = re.compile(r"\brule\s+(\w+)\s*(?::[^{]*)?\{\s*meta:(.*?)\n\s*(?:strings|condition)\s*:", re.S)
_META_PAIR = re.compile(r'^\s*(\w+)\s*=\s*(?:"([^"]*)"|(-?\d+)|(true|false))', re.M)
_LINE_COMMENT = re.compile(r"//[^\n]*")


class EngineTimeout(Exception):
    """The engine's per-scan time limit stopped a window's scan."""


class Hit(NamedTuple):
    """One instance of one rule's string: the rule name and the offset inside the scanned buffer."""

    rule: str
    offset: int


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """What a rule's `meta:` block tells the detector."""

    name: str
    role: str
    format: Format | None
    adjust: int  # added to a hit's offset to get the member's start (tar: -257)
    encoding: str | None  # hints: the wrapping to peel ("base64", "hex")

    @classmethod
    def from_pairs(cls, name: str, pairs: Iterable[tuple[str, object]]) -> RuleMeta:
        meta = dict(pairs)
        role = str(meta.get("role", ""))
        if role not in ROLES:
            raise RuleError(name, f"meta role must be one of {', '.join(ROLES)}, not {role!r}")
        fmt = meta.get("format")
        try:
            format_ = Format(str(fmt)) if fmt is not None else None
        except ValueError:
            raise RuleError(name, f"meta format {fmt!r} is not a stagewatch.format") from None
        if role in ("candidate", "anchored") and format_ is None:
            raise RuleError(name, f"a {role} rule needs meta format")
        enc = meta.get("encoding")
        return cls(name, role, format_, int(str(meta.get("adjust", 0))), str(enc) if enc else None)


@dataclass(frozen=True, slots=True)
class RuleFiles:
    """The rule files of one directory, split into the groups the engines compile apart."""

    main: tuple[tuple[str, str], ...]  # (namespace, source) scanned anywhere
    hot: tuple[tuple[str, str], ...]  # rules with 2-byte atoms (meta hot = "true")
    anchored: tuple[tuple[str, str], ...]  # condition-only rules run on an object's head
    digest: str  # sha256 over names and sources: the compiled-rule cache key
    meta: dict[str, RuleMeta]  # every rule's meta, read once from the sources for both engines

    @classmethod
    def load(cls, directory: Path, extra: Iterable[Path] = ()) -> RuleFiles:
        """The folder's *.yar files, and `extra` files (the analyst's detection rules, namespaced user_*)."""
        paths = sorted(directory.glob("*.yar"))
        if not paths:
            raise RuleError(str(directory), "no *.yar rule files")
        main, hot, anchored = [], [], []
        meta: dict[str, RuleMeta] = {}
        h = hashlib.sha256()
        for p in [*paths, *extra]:
            src = p.read_text()
            h.update(p.name.encode() + b"\0" + src.encode() + b"\0")
            group = anchored if _ANCHORED.search(src) else hot if _HOT.search(src) else main
            group.append((p.stem if p in paths else "user_" + re.sub(r"\W", "_", p.stem), src))
            for name, block in _RULE_META.findall(_LINE_COMMENT.sub("", src)):
                if name in meta:
                    raise RuleError(str(p), f"rule {name} is defined twice")
                pairs = [(k, s or n or b) for k, s, n, b in _META_PAIR.findall(block)]
                meta[name] = RuleMeta.from_pairs(name, pairs)
        return cls(tuple(main), tuple(hot), tuple(anchored), h.hexdigest(), meta)


class Engine(Protocol):
    """A compiled rule set: `scan` returns every instance of every matching rule's strings.

    With `head=True` the buffer starts an object, so the anchored rules run too; a match of one
    comes back as Hit(rule, 0).
    """

    name: ClassVar[str]
    meta: dict[str, RuleMeta]

    def scan(self, data: Buffer, head: bool = False) -> list[Hit]: ...


engines: Registry[type] = Registry("engine")


def bundled_rules_dir() -> Path:
    """The signatures/ folder shipped with the package (repo checkout or installed data)."""
    return bundled_signatures()
