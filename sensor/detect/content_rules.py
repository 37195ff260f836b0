"""The analyst's own YARA rules (`--rules DIR`): detection rules join the bundled set, content rules run over
the decompressed head of every verified member, to say *what* was staged (card numbers, keys, code names)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yara_x

from sensor.errors import RuleError
from sensor.model import Buffer

_ROLE = re.compile(r'\brole\s*=\s*"')
_RULE = re.compile(r"^\s*(?:private\s+|global\s+)*rule\s+\w+", re.M)


@dataclass(frozen=True, slots=True)
class UserRules:
    """The YARA files of a user rule folder, split by what they are for."""

    detection: tuple[Path, ...]  # rules with `meta: role = ...`: candidates/hints beside the bundled ones
    content: tuple[Path, ...]  # rules without a role: matched against decompressed member heads
    sigma: tuple[Path, ...]  # host rules (*.yml, *.yaml) beside the bundled Sigma rule

    @classmethod
    def scan(cls, folder: Path) -> UserRules:
        """Sort the folder's files; an unreadable folder or a file mixing both kinds is a RuleError."""
        if not folder.is_dir():
            raise RuleError(str(folder), "--rules: not a folder")
        detection, content = [], []
        for path in sorted(folder.glob("*.yar")) + sorted(folder.glob("*.yara")):
            try:
                src = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise RuleError(str(path), f"cannot read: {e}") from None
            roles, rules = len(_ROLE.findall(src)), len(_RULE.findall(src))
            if roles and roles < rules:
                raise RuleError(str(path), "mixes detection rules (meta role) and content rules; split the file")
            (detection if roles else content).append(path)
        sigma = tuple(sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml")))
        if not (detection or content or sigma):
            raise RuleError(str(folder), "--rules: no *.yar, *.yara, *.yml or *.yaml files")
        return cls(tuple(detection), tuple(content), sigma)


def check_detection(files: tuple[Path, ...]) -> None:
    """Compile each detection file alone, so a mistake is reported with its own file and line."""
    for path in files:
        try:
            yara_x.Compiler().add_source(path.read_text(encoding="utf-8"), origin=str(path))
        except yara_x.CompileError as e:
            raise RuleError(str(path), f"detection rule does not compile: {_first_line(str(e))}") from None


class ContentTimeout(Exception):
    """The content rules' time limit stopped a scan of one member's head."""


class ContentRules:
    """Compiled content rules; `match` names the rules whose condition holds on a buffer."""

    def __init__(self, files: tuple[Path, ...], timeout: int = 10) -> None:
        compiler = yara_x.Compiler()
        for path in files:
            # one namespace per file: two analysts' files may both call a rule `ssn`
            compiler.new_namespace(re.sub(r"\W", "_", path.stem))
            try:
                compiler.add_source(path.read_text(encoding="utf-8"), origin=str(path))
            except yara_x.CompileError as e:
                raise RuleError(str(path), f"content rule does not compile: {_first_line(str(e))}") from None
        self.rules = compiler.build()
        self.timeout = timeout

    def match(self, data: Buffer) -> tuple[str, ...]:
        """Rule names (`namespace.rule` when two files share a name) whose condition holds on `data`."""
        if not data:
            return ()
        # a scanner per call: a Scanner is bound to its thread, and the detector may run on a pool's thread
        scanner = yara_x.Scanner(self.rules)
        scanner.set_timeout(self.timeout)
        try:
            found = scanner.scan(bytes(data))
        except yara_x.TimeoutError:
            raise ContentTimeout(f"content rules ran over {self.timeout} s") from None
        return tuple(sorted({r.identifier for r in found.matching_rules}))


def load_user_rules(folder: Path | None, timeout: int = 10) -> tuple[UserRules | None, ContentRules | None]:
    """The analyst's rule folder (--rules), detection files checked one by one, content rules compiled."""
    if folder is None:
        return None, None
    user = UserRules.scan(folder)
    check_detection(user.detection)
    return user, ContentRules(user.content, timeout) if user.content else None


def _first_line(msg: str) -> str:
    """yara-x's error as one line: the message and its `--> file:line:column`."""
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    where = next((ln for ln in lines if ln.startswith("-->")), "")
    return f"{lines[0] if lines else msg} {where}".strip()


__all__ = ["ContentRules", "ContentTimeout", "UserRules", "check_detection", "load_user_rules"]
