"""`stagewatch rules export`: the host Sigma rules converted to a SIEM's query language with pySigma backends.

Each target is a backend class plus the processing pipelines that give it the SIEM's field names; the
backend is imported only when asked for, from an optional extra (`pip install 'stagewatch[splunk]'`).

Backends and versions (checked against PyPI metadata and by converting signatures/host):

* qradar-aql: pysigma-backend-qradar-community 0.4 (extra `qradar`), the maintained fork of IBM's backend,
  same module (sigma.backends.QRadarAQL) ported to pySigma 1.x. IBM's pysigma-backend-qradar-aql 0.3.2,
  its last release, pins pySigma<0.12 and regex<2024 and fails to import under pySigma>=1, so it cannot sit
  beside the Splunk and Elastic backends; when it is installed this target says so instead of crashing.
  Pipeline: qradar_aql_pipeline below, the backend's QRadarAQL_fields_pipeline (field names to AQL
  properties, devicetype=12 for product windows; a field it cannot map is an error, not a silent search of
  the payload) with the Sysmon fields mapped to the custom properties the seed query reads (QRADAR_SYSMON)
  and the seed's `"EventCode" = '7'` (1, 11) per category. The backend maps ImageLoaded to
  `CONCAT('file directory', '/', filename)`: a string literal, not the property, so the DLL-load rule and
  its exclusion compared a constant and could never match.
* splunk: pysigma-backend-splunk 2.x (extra `splunk`), SplunkBackend with splunk_windows_pipeline
  (EventID -> EventCode, service -> source="WinEventLog:..."); Sysmon field names stay as they are.
* elastic: pysigma-backend-elasticsearch 2.1+ (extra `elastic`), LuceneBackend with ecs_windows (Winlogbeat
  ECS names) and ecs_any_os_pipeline below, which gives ECS names to the rules that name no product.

None of the three has released support for pySigma 2 (each declares pySigma<2), so installing an extra
resolves pySigma (we require >=0.11) to 1.x, today 1.5.1; pySigma before 1.5.1 fails on `selection and not
1 of filter_*` (the DLL-load rule), here and in sigma.py alike. Under pySigma 2.0.1 with the backends
installed --no-deps, all three still convert these rules; if a backend breaks on the pySigma it finds, the
error names both. Elastic starts at 2.1: earlier releases fetch MITRE ATT&CK data from GitHub on import.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensor.errors import RuleError, SensorError

# pySigma, importlib.metadata and the host-rule engine are imported by the functions that use them: this
# module also gives the CLI's parser its `rules` subcommand, on every start.

# Sigma taxonomy -> ECS for rules without `product: windows` (ecs_windows only maps those). These names hold
# for Linux telemetry in ECS too (Auditbeat, Elastic Defend), hence no Winlogbeat-only `.caseless` suffix.
ECS_ANY_OS = {
    "Image": "process.executable",
    "CommandLine": "process.command_line",
    "ParentImage": "process.parent.executable",
    "ParentCommandLine": "process.parent.command_line",
    "ProcessId": "process.pid",
    "ParentProcessId": "process.parent.pid",
    "User": "user.name",
    "TargetFilename": "file.path",
    "ImageLoaded": "file.path",
}

# Sigma (Sysmon) field -> the QRadar custom property the seed query (shared/seeds, "Detect Archive via Library
# in IBM QRadar") reads: Sysmon through the Windows DSM with custom properties named as Sysmon names the fields
# (hostevents/qradar.py parses that query's results). The backend's own names are wrong or absent here:
# ImageLoaded becomes a string literal, Image the DSM's "Process Path"/"Process Name", EventID "Event ID".
QRADAR_SYSMON = {
    "EventID": "EventCode",
    "Image": "Image",
    "ParentImage": "ParentImage",
    "CommandLine": "CommandLine",
    "ImageLoaded": "ImageLoaded",
    "TargetFilename": "TargetFilename",
}
# Sigma category -> Sysmon event id, compared as the seed does ("EventCode" = '7', a text property). The
# custom properties above exist on Sysmon events only, so rules that name no product get it as well.
SYSMON_EVENT_CODES = {"process_creation": "1", "image_load": "7", "file_event": "11"}


class ExportError(SensorError, ValueError):
    """The target's backend is missing or does not run with the installed pySigma, or --output is unwritable.

    A ValueError, so the CLI maps it to exit status 2 (usage) with its one-line message.
    """


@dataclass(frozen=True, slots=True)
class Target:
    """A SIEM: backend class and pipeline factories as "module:name", and where the backend comes from."""

    backend: str
    pipelines: tuple[str, ...]
    extra: str
    distribution: str
    broken: tuple[str, ...] = ()  # distributions installing the same modules that cannot run with pySigma>=1


TARGETS: dict[str, Target] = {
    "qradar-aql": Target(
        "sigma.backends.QRadarAQL:QRadarAQLBackend",
        ("sensor.hostrules.export:qradar_aql_pipeline",),
        "qradar",
        "pysigma-backend-qradar-community",
        broken=("pysigma-backend-qradar-aql",),
    ),
    "splunk": Target(
        "sigma.backends.splunk:SplunkBackend",
        ("sigma.pipelines.splunk:splunk_windows_pipeline",),
        "splunk",
        "pysigma-backend-splunk",
    ),
    "elastic": Target(
        "sigma.backends.elasticsearch:LuceneBackend",
        ("sigma.pipelines.elasticsearch:ecs_windows", "sensor.hostrules.export:ecs_any_os_pipeline"),
        "elastic",
        "pysigma-backend-elasticsearch",
    ),
}


@dataclass(frozen=True, slots=True)
class ExportedRule:
    """The queries of one rule (one, unless the rule has several conditions)."""

    path: Path
    id: str
    title: str
    label: str
    queries: tuple[str, ...]


def ecs_any_os_pipeline() -> Any:
    """ECS field names for rules whose logsource is not `product: windows`."""
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldMappingTransformation

    return ProcessingPipeline(
        name="stagewatch: ECS names for rules without product windows",
        priority=20,
        items=[
            ProcessingItem(
                identifier="stagewatch_ecs_any_os",
                transformation=FieldMappingTransformation(dict(ECS_ANY_OS)),
                rule_conditions=[LogsourceCondition(product="windows")],
                rule_condition_negation=True,
            )
        ],
    )


def qradar_aql_pipeline() -> Any:
    """QRadarAQL_fields_pipeline with QRADAR_SYSMON in its field mapping and the Sysmon event code per category."""
    from sigma.backends.QRadarAQL import QRadarAQLBackend
    from sigma.mapping.fields import aql_field_mapping
    from sigma.pipelines.QRadarAQL.QRadarAQL import base_pipeline_items
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem
    from sigma.processing.transformations import AddConditionTransformation
    from sigma.pySigma_QRadar_base.QRadarFieldsPipeline import QRadar_fields_pipeline
    from sigma.pySigma_QRadar_base.QRadarPipeline import QRadarFieldMappingTransformation

    mapping = {**aql_field_mapping, **QRADAR_SYSMON}
    items = base_pipeline_items()
    at = [i for i, item in enumerate(items) if item.identifier == "aql_field_mapping"]
    if len(at) != 1:  # the backend's pipeline changed shape: converting with its mapping would bring the bug back
        raise ExportError("qradar-aql", "QRadarAQL pipeline has no single aql_field_mapping item to replace")
    items[at[0]] = ProcessingItem(
        identifier="aql_field_mapping",
        transformation=QRadarFieldMappingTransformation(
            mapping=mapping, field_quote_pattern=QRadarAQLBackend.field_quote_pattern
        ),
    )
    event_codes = [
        ProcessingItem(
            identifier=f"stagewatch_sysmon_{category}",
            transformation=AddConditionTransformation({"EventID": code}),  # a string: "EventCode" is text
            rule_conditions=[LogsourceCondition(category=category)],
        )
        for category, code in SYSMON_EVENT_CODES.items()
    ]
    return QRadar_fields_pipeline(base_pipeline_items=event_codes + items, field_mapping=mapping)


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _pysigma_clash(dist: str) -> str | None:
    """'<dist> <v> needs pySigma<spec>, pySigma <v> is installed' when the installed pySigma is outside its range."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    have, installed = _version(dist), _version("pysigma")
    requires: list[str] = []
    if have is not None and installed is not None:
        with contextlib.suppress(metadata.PackageNotFoundError):
            requires = metadata.requires(dist) or []
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.name.lower() == "pysigma" and not req.specifier.contains(installed, prereleases=True):
            return f"{dist} {have} needs pySigma{req.specifier}, pySigma {installed} is installed"
    return None


def _attr(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def load_backend(target: str) -> Any:
    """A backend instance for a target, with its pipelines; ExportError says what to install."""
    t = TARGETS[target]
    install = f"install stagewatch[{t.extra}] ({t.distribution})"
    for dist in t.broken:
        if _version(dist) is not None:
            clash = _pysigma_clash(dist) or f"{dist} {_version(dist)} does not run with pySigma>=1"
            raise ExportError(target, f"{clash}: pip uninstall {dist}, then {install}")
    try:
        backend_class = _attr(t.backend)
        pipelines = [_attr(p)() for p in t.pipelines]
    except ModuleNotFoundError as e:
        ours = [p.partition(":")[0] for p in (t.backend, *t.pipelines)]
        if e.name and any(m == e.name or m.startswith(e.name + ".") for m in ours):
            raise ExportError(target, f"no pySigma backend: {install}") from None
        raise ExportError(target, f"{e}; {_pysigma_clash(t.distribution) or install}") from None
    except (ImportError, AttributeError, TypeError) as e:  # a backend written for another pySigma
        raise ExportError(target, f"{_pysigma_clash(t.distribution) or e}; {install}") from None
    pipeline = pipelines[0]
    for p in pipelines[1:]:
        pipeline = pipeline + p
    return backend_class(processing_pipeline=pipeline)


def export_rules(target: str, rules: Path | None = None) -> list[ExportedRule]:
    """Every rule of a folder (default: the bundled host rules) or file, converted for a target."""
    if target not in TARGETS:
        raise ExportError(target, f"unknown target; choose one of {', '.join(TARGETS)}")
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError

    from sensor.hostrules.engine import bundled_host_rules

    backend = load_backend(target)
    folder = rules if rules is not None else bundled_host_rules()
    if not folder.exists():
        raise RuleError(str(folder), "no such folder or file")
    paths = sorted(folder.glob("*.yml")) if folder.is_dir() else [folder]
    if not paths:
        raise RuleError(str(folder), "no *.yml Sigma rules")
    out: list[ExportedRule] = []
    for path in paths:
        try:
            collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"))
            for rule in collection.rules:
                label = rule.custom_attributes.get("stagewatch_label") if rule.custom_attributes else None
                queries = tuple(str(q) for q in backend.convert_rule(rule))
                out.append(ExportedRule(path, str(rule.id or "-"), rule.title, str(label or rule.title), queries))
        except (SigmaError, OSError) as e:
            raise RuleError(str(path), f"Sigma rule: {e}") from None
        except Exception as e:  # a backend that does not fit the installed pySigma fails inside convert
            clash = _pysigma_clash(TARGETS[target].distribution)
            if clash is None:
                raise
            raise ExportError(target, f"{clash}: {type(e).__name__}: {e}") from None
    return out


def render(exported: list[ExportedRule]) -> str:
    """One `# id label: title` line per rule, then its queries, one a line."""
    lines: list[str] = []
    for r in exported:
        lines.append(f"# {r.id} {r.label}: {r.title}")
        lines += [q.replace("\n", " ") for q in r.queries]
    return "\n".join(lines) + "\n"


def cmd_rules_export(a: argparse.Namespace) -> int:
    """The CLI's `rules export`: writes the queries to --output (a file, or - for stdout)."""
    text = render(export_rules(a.target, a.rules))
    if a.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            Path(a.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise ExportError(a.output, f"cannot write: {e.strerror or e}") from None
    return 0


def add_rules_parser(sub: Any) -> None:
    """The `rules` subcommand (with `export`) on the CLI's subparsers; dispatch through `a.rules_func`."""
    r = sub.add_parser("rules", help="work with the bundled host Sigma rules")
    rsub = r.add_subparsers(dest="rules_command", required=True, help="what to do with them")
    e = rsub.add_parser("export", help="convert the host Sigma rules to a SIEM query language")
    e.add_argument("--target", required=True, choices=tuple(TARGETS), help="SIEM query language")
    e.add_argument("--rules", type=Path, metavar="DIR", help="Sigma rules folder (default: the bundled host rules)")
    e.add_argument("--output", metavar="FILE|-", help="write the queries here (default -: stdout)")
    e.set_defaults(rules_func=cmd_rules_export)


def run_rules(a: argparse.Namespace) -> int:
    """Dispatch `stagewatch rules ...`."""
    func: Callable[[argparse.Namespace], int] = a.rules_func
    return func(a)


__all__ = [
    "ECS_ANY_OS",
    "QRADAR_SYSMON",
    "SYSMON_EVENT_CODES",
    "TARGETS",
    "ExportError",
    "ExportedRule",
    "Target",
    "add_rules_parser",
    "cmd_rules_export",
    "ecs_any_os_pipeline",
    "export_rules",
    "load_backend",
    "qradar_aql_pipeline",
    "render",
    "run_rules",
]
