"""Sigma rules evaluated in process: pySigma parses the YAML, this module turns each condition into a predicate.

pySigma resolves modifiers (contains, endswith, all, re, cidr, windash...) into a tree of AND/OR/NOT
over field = value comparisons; we compile that tree once per rule. Strings match case-insensitively
with Sigma's wildcards, as Sigma specifies; regular expressions as written. A rule applies to the
events its logsource names (category -> HostEvent action, product -> providers).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCIDRExpression,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from sensor.errors import RuleError
from sensor.model import HostEvent

Predicate = Callable[[HostEvent], bool]

# Sigma taxonomy field -> how to read it from a HostEvent
FIELDS: dict[str, Callable[[HostEvent], object]] = {
    "Image": lambda e: e.image,
    "NewProcessName": lambda e: e.image,
    "CommandLine": lambda e: e.command_line,
    "ParentImage": lambda e: e.parent_image,
    "ParentCommandLine": lambda e: e.parent_command_line,
    "User": lambda e: e.user,
    "ProcessId": lambda e: e.pid,
    "ParentProcessId": lambda e: e.ppid,
    "ImageLoaded": lambda e: e.loaded_image,
    "TargetFilename": lambda e: e.target_file,
    "Hashes": lambda e: e.hashes,
    "EventID": lambda e: e.code,
    "ScriptBlockText": lambda e: e.script,
    "HostApplication": lambda e: e.command_line if e.action == "script" else None,
    "Computer": lambda e: e.host,
    "SourceIp": lambda e: e.net.src if e.net else None,
    "SourcePort": lambda e: e.net.sport if e.net else None,
    "DestinationIp": lambda e: e.net.dst if e.net else None,
    "DestinationPort": lambda e: e.net.dport if e.net else None,
}
CATEGORIES = {
    "process_creation": ("process",),
    "image_load": ("image_load",),
    "file_event": ("file_create",),
    "file_delete": ("file_delete",),
    "network_connection": ("network",),
    "ps_script": ("script",),
    "ps_module": ("script",),
    "ps_classic_start": ("script",),
}
PRODUCTS = {
    "windows": ("sysmon", "security", "powershell", "qradar"),
    "linux": ("auditd", "sysmon-linux", "qradar"),
}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A Sigma rule ready to run: which events it looks at, and its predicate."""

    id: str
    title: str
    level: str
    label: str  # stagewatch_label (the seed's DetectionSource), else the title
    techniques: tuple[str, ...]
    actions: tuple[str, ...] | None
    providers: tuple[str, ...] | None
    predicate: Predicate

    def applies(self, e: HostEvent) -> bool:
        return (self.actions is None or e.action in self.actions) and (
            self.providers is None or e.provider in self.providers
        )


def _string(v: SigmaString) -> Predicate | re.Pattern[str]:
    parts = []
    for p in v.s:
        if p is SpecialChars.WILDCARD_MULTI:
            parts.append(".*")
        elif p is SpecialChars.WILDCARD_SINGLE:
            parts.append(".")
        else:
            parts.append(re.escape(str(p)))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _value_test(value: object) -> Callable[[object], bool]:
    if isinstance(value, SigmaString):
        rx = _string(value)
        return lambda x: x is not None and rx.fullmatch(str(x)) is not None  # type: ignore[union-attr]
    if isinstance(value, SigmaRegularExpression):
        flags = re.IGNORECASE if any("i" in str(f).lower() for f in getattr(value, "flags", ())) else 0
        rx2 = re.compile(str(value.regexp), flags)
        return lambda x: x is not None and rx2.search(str(x)) is not None
    if isinstance(value, SigmaNumber):
        n = value.number
        return lambda x: x is not None and str(x) == str(n)
    if isinstance(value, SigmaBool):
        b = value.boolean
        return lambda x: x is not None and str(x).lower() == str(b).lower()
    if isinstance(value, SigmaNull):
        return lambda x: x in (None, "")
    if isinstance(value, SigmaCIDRExpression):
        net = ipaddress.ip_network(str(value.cidr), strict=False)

        def in_net(x: object) -> bool:
            try:
                return x is not None and ipaddress.ip_address(str(x)) in net
            except ValueError:
                return False

        return in_net
    raise RuleError("sigma", f"value type {type(value).__name__} is not supported by stagewatch's evaluator")


def _compile(node: object) -> Predicate:
    if isinstance(node, ConditionAND):
        parts = [_compile(a) for a in node.args]
        return lambda e: all(p(e) for p in parts)
    if isinstance(node, ConditionOR):
        parts = [_compile(a) for a in node.args]
        return lambda e: any(p(e) for p in parts)
    if isinstance(node, ConditionNOT):
        inner = _compile(node.args[0])
        return lambda e: not inner(e)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        get = FIELDS.get(node.field)
        test = _value_test(node.value)
        if get is None:  # a field this telemetry never carries: only a null test can hold
            return lambda e: test(None)
        return lambda e: test(get(e))
    if isinstance(node, ConditionValueExpression):  # keywords: any field
        test = _value_test(node.value)
        return lambda e: any(test(get(e)) for get in FIELDS.values())
    raise RuleError("sigma", f"condition element {type(node).__name__} is not supported")


def compile_rule(rule: SigmaRule) -> CompiledRule:
    """One parsed Sigma rule to a CompiledRule; a rule with several conditions matches if any does."""
    conditions = [_compile(c.parsed) for c in rule.detection.parsed_condition]
    ls = rule.logsource
    techniques = tuple(t.name.upper() for t in rule.tags if t.namespace == "attack" and t.name.lower().startswith("t"))
    label = rule.custom_attributes.get("stagewatch_label") if rule.custom_attributes else None
    return CompiledRule(
        id=str(rule.id),
        title=rule.title,
        level=str(rule.level.name.lower()) if rule.level else "medium",
        label=str(label or rule.title),
        techniques=techniques,
        actions=CATEGORIES.get(ls.category or "") if ls.category else None,
        providers=PRODUCTS.get(ls.product or "") if ls.product else None,
        predicate=lambda e: any(c(e) for c in conditions),
    )


def load_rules(paths: Iterable[Path]) -> list[CompiledRule]:
    """Every rule of the given Sigma YAML files; a broken rule is a RuleError naming its file."""
    out: list[CompiledRule] = []
    for path in paths:
        text = ""
        try:
            text = path.read_text(encoding="utf-8")
            collection = SigmaCollection.from_yaml(text)
            out += [compile_rule(r) for r in collection.rules]
        except yaml.MarkedYAMLError as e:
            line = e.problem_mark.line + 1 if e.problem_mark is not None else 1
            raise RuleError(f"{path}:{line}", f"Sigma rule: invalid YAML: {e.problem}") from None
        except (SigmaError, OSError, ValueError, yaml.YAMLError) as e:
            raise RuleError(_located(path, text, str(e)), f"Sigma rule: {e}") from None
        except (AttributeError, TypeError, KeyError) as e:  # pySigma on YAML that is no rule (a bare string...)
            raise RuleError(str(path), f"Sigma rule: not a rule document ({type(e).__name__}: {e})") from None
    return out


def _located(path: Path, text: str, message: str) -> str:
    """`path:line` of the first quoted name in pySigma's message (a modifier, a field), else `path`."""
    quoted = re.search(r"'([^'\n]{2,})'", message)
    if quoted:
        for n, line in enumerate(text.splitlines(), 1):
            if quoted.group(1) in line:
                return f"{path}:{n}"
    return str(path)


__all__ = ["CATEGORIES", "FIELDS", "PRODUCTS", "CompiledRule", "compile_rule", "load_rules"]
