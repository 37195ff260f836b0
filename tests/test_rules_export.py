"""`stagewatch rules export`: the bundled host Sigma rules converted by each SIEM backend (skipped when absent)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sigma.collection import SigmaCollection

from sensor.cli import main
from sensor.hostrules import export
from sensor.hostrules.engine import bundled_host_rules
from sensor.hostrules.export import TARGETS, ExportError, Target, export_rules, load_backend, render
from tests.conftest import SHARED, need

# target -> (backend module, field names that must appear in the SIEM's naming)
EXPECTED = {
    "splunk": ("sigma.backends.splunk", ("ImageLoaded IN (", "Image IN (", "CommandLine IN (", "TargetFilename IN (")),
    "elastic": (
        "sigma.backends.elasticsearch",
        ("file.path:", "process.executable", "process.command_line:", "powershell.file.script_block_text:"),
    ),
    "qradar-aql": (
        "sigma.backends.QRadarAQL",
        ("LOWER(ImageLoaded)", "LOWER(Image)", "LOWER(CommandLine)", "LOWER(TargetFilename)", "devicetype=12"),
    ),
}
RULES = 6  # signatures/host/t1560_002_archive_via_library.yml


def backend_or_skip(target: str) -> None:
    module, _ = EXPECTED[target]
    extra = TARGETS[target].extra
    pytest.importorskip(
        module, reason=f"{TARGETS[target].distribution} not installed (pip install 'stagewatch[{extra}]')"
    )
    try:
        load_backend(target)
    except ExportError as e:  # installed, but not runnable beside this pySigma
        pytest.skip(str(e))


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_export_one_query_per_rule_in_the_targets_names(target: str) -> None:
    backend_or_skip(target)
    exported = export_rules(target)
    assert len(exported) == RULES
    assert all(len(r.queries) == 1 and r.queries[0].strip() for r in exported)
    assert {r.label for r in exported} >= {"CompressionDllLoad", "PowerShellLibraryCompression"}  # stagewatch_label
    text = render(exported)
    queries = [line for line in text.splitlines() if not line.startswith("# ")]
    assert len(queries) == RULES
    for field in EXPECTED[target][1]:
        assert field in text, field
    low = "\n".join(queries).lower().replace("\\-", "-").replace("\\ ", " ")  # Lucene escapes - and space
    assert "zlib1.dll" in low and "compress-archive" in low and "import zlib" in low
    if target == "elastic":  # rules without `product: windows` get ECS names as well
        assert not any(f in text for f in ("CommandLine:", "Image:", "TargetFilename:"))


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_cli_writes_the_queries_to_a_file(target: str, tmp_path, capsys) -> None:
    backend_or_skip(target)
    out = tmp_path / f"{target}.txt"
    assert main(["rules", "export", "--target", target, "--output", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert sum(not line.startswith("# ") for line in lines) == RULES
    assert capsys.readouterr().out == ""


def test_cli_rules_folder_and_stdout(tmp_path, capsys) -> None:
    target = next((t for t in sorted(EXPECTED) if _runs(t)), None)
    if target is None:
        pytest.skip("no export backend installed (pip install 'stagewatch[splunk]')")
    (tmp_path / "one.yml").write_text(
        "title: t\nid: 6d0a3c1e-8f53-4a51-9d2b-1c4b5e7f0aff\nstagewatch_label: Mine\n"
        "logsource: {product: windows, category: process_creation}\n"
        "detection: {sel: {CommandLine|contains: Compress-Archive}, condition: sel}\n",
        encoding="utf-8",
    )
    assert main(["rules", "export", "--target", target, "--rules", str(tmp_path), "--output", "-"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("# 6d0a3c1e-8f53-4a51-9d2b-1c4b5e7f0aff Mine: t")
    (tmp_path / "two.yml").write_text("title: broken\ndetection: {condition: nothing}\n", encoding="utf-8")
    assert main(["rules", "export", "--target", target, "--rules", str(tmp_path)]) == 1
    assert "two.yml" in capsys.readouterr().err


def _runs(target: str) -> bool:
    try:
        load_backend(target)
    except ExportError:
        return False
    return True


def test_unknown_target_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["rules", "export", "--target", "arcsight"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_missing_backend_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    missing = Target("sigma.backends.nosuchsiem:NoBackend", (), "nosuch", "pysigma-backend-nosuchsiem")
    monkeypatch.setitem(TARGETS, "nosuch", missing)
    assert main(["rules", "export", "--target", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuch: no pySigma backend: install stagewatch[nosuch]" in err[0]


def test_ibm_qradar_backend_is_named_as_the_conflict(monkeypatch) -> None:
    """IBM's backend (pySigma<0.12) shadows the community one: say so before importing anything."""
    real = export._version
    monkeypatch.setattr(export, "_version", lambda d: "0.3.2" if d == "pysigma-backend-qradar-aql" else real(d))
    with pytest.raises(ExportError) as exc:
        load_backend("qradar-aql")
    msg = str(exc.value)
    assert "pysigma-backend-qradar-aql 0.3.2" in msg and "pip uninstall pysigma-backend-qradar-aql" in msg
    assert "install stagewatch[qradar]" in msg and "\n" not in msg


# --- the exported queries against the seed's own AQL, property by property ------------------------------------
# Seed 000 ("Detect Archive via Library in IBM QRadar") holds the detection as AQL: a CASE that names each branch
# (DetectionSource, our rules' stagewatch_label) and a WHERE with one branch per Sysmon event. Each branch
# compares properties ("EventCode", "Image", "CommandLine", "ImageLoaded", "TargetFilename") with values. The
# exported query of the rule that carries that branch must compare the same properties as properties (never as
# string literals, as the backend's `CONCAT('file directory', ...)` did for ImageLoaded) with the same values,
# include and exclude alike.

SEEDS = SHARED / "seeds"
SYSMON_CATEGORY = {"1": "process_creation", "7": "image_load", "11": "file_event"}  # Sysmon event id -> Sigma
# seed property -> the names each target gives it (Splunk keeps Sysmon's; Elastic: ECS through ecs_windows for
# product windows, ECS_ANY_OS otherwise). Splunk and Elastic queries carry no event code: their Sysmon fields
# and pipelines select the event, so EventCode is compared for QRadar only.
NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "qradar-aql": {p: (p,) for p in ("EventCode", "Image", "CommandLine", "ImageLoaded", "TargetFilename")},
    "splunk": {p: (p,) for p in ("Image", "CommandLine", "ImageLoaded", "TargetFilename")},
    "elastic": {
        "Image": ("process.executable", "process.executable.caseless"),
        "CommandLine": ("process.command_line",),
        "ImageLoaded": ("file.path",),
        "TargetFilename": ("file.path",),
    },
}


@dataclass(frozen=True)
class Pred:
    """One comparison: a property (None when the operand is not a property), '=' or 'LIKE' with a %-pattern."""

    prop: str | None
    operand: str  # as written, for messages
    op: str
    value: str
    negated: bool
    folded: bool  # compared without regard to case (LOWER(...), Splunk, a .caseless field)


def negations(text: str, quote: str) -> list[int]:
    """How many NOT groups enclose each position, outside quote-delimited literals (AQL doubles its quote)."""
    depth, stack, out, i = 0, [], [0] * (len(text) + 1), 0
    while i < len(text):
        c = text[i]
        if c == "\\" and quote != "'":  # SPL strings and Lucene terms escape with a backslash
            out[i] = out[i + 1] = depth
            i += 2
            continue
        if c == quote:
            j = i + 1
            while j < len(text):
                if (quote == "'" and text.startswith("''", j)) or (quote == '"' and text[j] == "\\"):
                    j += 2  # AQL's doubled quote, SPL's backslash escape
                elif text[j] == quote:
                    break
                else:
                    j += 1
            for k in range(i, min(j + 1, len(text))):
                out[k] = depth
            i = j + 1
            continue
        if c == "(":
            neg = text[:i].rstrip().upper().endswith("NOT")
            stack.append(neg)
            depth += neg
        elif c == ")" and stack:
            depth -= stack.pop()
        out[i] = depth
        i += 1
    return out


AQL_PRED = re.compile(
    r"(?P<lhs>LOWER\((?P<inner>(?:[^()']|'(?:[^']|'')*'|\([^()]*\))*)\)|\"[^\"]+\"|[A-Za-z_]\w*)"
    r"\s*(?P<op>NOT\s+LIKE|LIKE|=)\s*'(?P<val>(?:[^']|'')*)'"
)
AQL_PROP = re.compile(r'^"(?P<q>[^"]+)"$|^(?P<b>[A-Za-z_]\w*)$')  # "file directory" or Filename; not 'literal'


def aql_preds(aql: str, *, seed: bool = False) -> list[Pred]:
    neg = negations(aql, "'")
    out = []
    for m in AQL_PRED.finditer(aql):
        prop = AQL_PROP.match((m["inner"] if m["inner"] is not None else m["lhs"]).strip())
        value = m["val"].replace("''", "'")
        if seed:  # the seed doubles each backslash, the backend writes it once; compare the paths, not the escape
            value = value.replace("\\\\", "\\")
        negated = bool(neg[m.start()] % 2) ^ m["op"].upper().startswith("NOT")
        op = "=" if m["op"] == "=" else "LIKE"
        name = (prop["q"] or prop["b"]) if prop else None
        out.append(Pred(name, m["lhs"], op, value, negated, m["inner"] is not None))
    return out


def spl_preds(spl: str) -> list[Pred]:
    neg = negations(spl, '"')
    out = []
    for m in re.finditer(r'(?P<f>"[^"]*"|[A-Za-z_][\w.]*)\s+IN\s+\((?P<vals>(?:"(?:[^"\\]|\\.)*"(?:,\s*)?)+)\)', spl):
        field = m["f"] if re.fullmatch(r"[A-Za-z_][\w.]*", m["f"]) else None  # a quoted "field" is a search term
        for v in re.findall(r'"((?:[^"\\]|\\.)*)"', m["vals"]):
            value = re.sub(r"\\(.)", r"\1", v).replace("*", "%")
            out.append(Pred(field, m["f"], "LIKE", value, bool(neg[m.start()] % 2), True))
    return out


def lucene_preds(query: str) -> list[Pred]:
    neg = negations(query, '"')
    out = []
    for m in re.finditer(r"(?P<f>[A-Za-z_][\w.]*):\((?P<vals>(?:[^()\\]|\\.)*)\)", query):
        for v in m["vals"].split(" OR "):
            value = re.sub(r"\\(.)", r"\1", v.strip()).replace("*", "%")
            out.append(Pred(m["f"], m["f"], "LIKE", value, bool(neg[m.start()] % 2), m["f"].endswith(".caseless")))
    return out


PARSE = {"qradar-aql": aql_preds, "splunk": spl_preds, "elastic": lucene_preds}


def covers(q: str, p: str) -> bool:
    """Whether LIKE pattern q matches every string LIKE pattern p matches (% at either end only)."""
    qc, pc = q.strip("%"), p.strip("%")
    qs, qe, ps, pe = q.startswith("%"), q.endswith("%"), p.startswith("%"), p.endswith("%")
    if qs and qe:
        return qc in pc
    if qs:
        return not pe and pc.endswith(qc)
    if qe:
        return not ps and pc.startswith(qc)
    return not (ps or pe) and qc == pc


@dataclass(frozen=True)
class SeedBranch:
    label: str  # the seed's DetectionSource for it
    event_code: str
    preds: tuple[Pred, ...]


def seed_branches() -> list[SeedBranch]:
    """The WHERE branches of the seed's AQL, each named by the seed's own CASE."""
    docs = [p for p in sorted(SEEDS.glob("*.txt")) if "QRadar Detection Query" in p.read_text(encoding="utf-8")]
    if not docs:
        need(f"no QRadar seed in {SEEDS} (it lives beside the repo in CI)")
    text = docs[0].read_text(encoding="utf-8")
    sql = text[text.index("SELECT") : text.index("ORDER BY")]
    case = sql[sql.index("CASE") : sql.index("END AS DetectionSource")]
    where = sql[sql.index("\nWHERE") :]
    whens = [
        (aql_preds(cond, seed=True), label) for cond, label in re.findall(r"WHEN (.*?) THEN '(\w+)'", case, flags=re.S)
    ]
    starts = [m.start() for m in re.finditer(r"\"EventCode\" = '", where)]
    out = []
    for a, b in zip(starts, [*starts[1:], len(where)], strict=True):
        preds = aql_preds(where[a:b], seed=True)
        code = next(p.value for p in preds if p.prop == "EventCode")

        def fits(when: list[Pred], preds: list[Pred] = preds, code: str = code) -> bool:
            # a WHEN fits the branch when its event code is the branch's and each of its other properties
            # has a pattern that covers one of the branch's patterns on that property
            return all(
                (w.value == code)
                if w.prop == "EventCode"
                else any(p.prop == w.prop and covers(w.value.lower(), p.value.lower()) for p in preds)
                for w in when
            )

        label = next(label for when, label in whens if fits(when))
        out.append(SeedBranch(label, code, tuple(preds)))
    return out


def bundled_categories() -> dict[str, str]:
    """Rule id -> Sigma logsource category, for the bundled host rules."""
    out = {}
    for path in sorted(bundled_host_rules().glob("*.yml")):
        for rule in SigmaCollection.from_yaml(path.read_text(encoding="utf-8")).rules:
            out[str(rule.id)] = rule.logsource.category
    return out


def test_seed_parses_into_its_four_branches() -> None:
    """The parser reads what the seed says: four branches, with the properties and values it compares."""
    branches = {b.label: b for b in seed_branches()}
    labels = ["CompressionDllLoad", "PowerShellLibraryCompression", "PythonLibraryCompression"]
    assert sorted(branches) == [*labels, "StagedCompressedFileCreation"]
    dll = branches["CompressionDllLoad"]
    assert dll.event_code == "7"
    assert {p.prop for p in dll.preds} == {"EventCode", "ImageLoaded", "Image"}
    assert Pred("ImageLoaded", 'LOWER("ImageLoaded")', "LIKE", "%\\zlib1.dll", False, True) in dll.preds
    assert Pred("ImageLoaded", 'LOWER("ImageLoaded")', "LIKE", "%\\system32\\%", True, True) in dll.preds  # NOT LIKE
    assert Pred("Image", 'LOWER("Image")', "LIKE", "%\\msiexec.exe", True, True) in dll.preds
    ps = branches["PowerShellLibraryCompression"]
    assert Pred("CommandLine", '"CommandLine"', "LIKE", "%GZipStream%", False, False) in ps.preds  # no LOWER
    assert {b.event_code for b in branches.values()} == {"1", "7", "11"}


def _seed_rule_pairs(target: str) -> list[tuple[SeedBranch, export.ExportedRule]]:
    exported = export_rules(target)
    categories = bundled_categories()
    pairs = []
    for branch in seed_branches():
        rules = [
            r for r in exported if r.label == branch.label and categories[r.id] == SYSMON_CATEGORY[branch.event_code]
        ]
        assert len(rules) == 1, f"{branch.label} (EventCode {branch.event_code}): {[r.id for r in rules]}"
        pairs.append((branch, rules[0]))
    return pairs


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_each_rule_compares_the_seeds_properties_and_values(target: str) -> None:
    """Per seed branch: the rule's query compares the same properties, each as a property, with the seed's values
    (a rule may say more: IO.Compression covers the seed's System.IO.Compression), exclusions as exclusions."""
    backend_or_skip(target)
    names = NAMES[target]
    for branch, rule in _seed_rule_pairs(target):
        where = f"{target} {rule.label} ({rule.id})"
        got = PARSE[target](rule.queries[0])
        literal = [p.operand for p in got if p.prop is None]
        assert not literal, f"{where}: compares a string literal, not a property: {literal}"
        want = {p.prop for p in branch.preds if p.prop in names}
        allowed = {n: seed_prop for seed_prop in want for n in names[seed_prop]}
        assert {p.prop for p in got} <= set(allowed), f"{where}: {sorted({p.prop for p in got} - set(allowed))}"
        assert {allowed[p.prop] for p in got} == want, f"{where}: properties {sorted({p.prop for p in got})}"
        for s in branch.preds:
            if s.prop not in names:
                continue
            mine = [p for p in got if p.prop in names[s.prop] and p.negated == s.negated and p.op == s.op]

            def same(p: Pred, s: Pred = s) -> bool:
                q, v = (p.value.lower(), s.value.lower()) if p.folded else (p.value, s.value)
                # an exclusion must be the seed's; a selection may be wider than the seed's
                return q == v if (s.negated or s.op == "=") else covers(q, v)

            kind = "NOT " * s.negated + s.op
            assert any(same(p) for p in mine), f"{where}: no {s.prop} {kind} {s.value!r} in {rule.queries[0]}"


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_rules_without_a_seed_branch_compare_properties_only(target: str) -> None:
    """The rules the seed has no branch for (PowerShell logs, Node/Perl/Ruby/PHP) compare properties as well."""
    backend_or_skip(target)
    paired = {r.id for _, r in _seed_rule_pairs(target)}
    rest = [r for r in export_rules(target) if r.id not in paired]
    assert len(rest) == RULES - 4
    for rule in rest:
        got = PARSE[target](rule.queries[0])
        assert got and all(p.prop for p in got), f"{target} {rule.id}: {rule.queries[0]}"


def test_qradar_dll_load_rule_names_imageloaded_and_the_sysmon_event() -> None:
    """The issue-14 query itself: ImageLoaded is the property the seed reads, in the selection and the exclusion."""
    backend_or_skip("qradar-aql")
    dll = next(r for r in export_rules("qradar-aql") if r.label == "CompressionDllLoad")
    q = dll.queries[0]
    assert "'file directory'" not in q and "CONCAT(" not in q
    assert q.startswith("SELECT * FROM events WHERE devicetype=12 AND EventCode='7' AND (")
    assert "LOWER(ImageLoaded) LIKE '%\\zlib1.dll'" in q
    assert "NOT(((LOWER(ImageLoaded) LIKE '%\\system32\\%'" in q


def test_qradar_pipeline_refuses_a_backend_without_its_field_mapping_item(monkeypatch) -> None:
    """If the backend's pipeline stops having the item we replace, export fails instead of using its mapping."""
    pytest.importorskip("sigma.pipelines.QRadarAQL")
    from sigma.pipelines.QRadarAQL import QRadarAQL as qp

    real = qp.base_pipeline_items
    monkeypatch.setattr(qp, "base_pipeline_items", lambda: [i for i in real() if i.identifier != "aql_field_mapping"])
    with pytest.raises(ExportError, match="aql_field_mapping"):
        export.qradar_aql_pipeline()
