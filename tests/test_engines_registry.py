"""The rule files compile under both engines and agree; every plug-in module registers exactly one entry."""

from __future__ import annotations

import importlib
import pkgutil
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sensor.content
import sensor.detect.verifiers
import sensor.hostevents
import sensor.protocols
from sensor.content import decoders
from sensor.content.base64 import decode_b64
from sensor.detect.engines import RuleFiles, bundled_rules_dir, engines
from sensor.model import Format
from tests import builders as b


@pytest.fixture(scope="module")
def all_engines(tmp_path_factory):
    rules = RuleFiles.load(bundled_rules_dir())
    cache = tmp_path_factory.mktemp("cache")
    return {name: engines.get(name)(rules, cache) for name in engines.names()}


def test_both_engines_return_the_same_hits(all_engines):
    r = random.Random(3)
    data = r.randbytes(300_000)
    for member in (
        b.gzip_plain(b"x" * 5000),
        b.xz_member(b"y" * 5000),
        b.zip_aes({"a": b"z"}),
        b.tar_archive({"a": b"q"}),
    ):
        at = r.randrange(0, len(data))
        data = data[:at] + member + data[at:]
    data += b"see H4sIAAAAAAAA/ and 1f8b0800 and eJzLSM3JyVcozy/KSQEA"
    results = {name: sorted(e.scan(data)) for name, e in all_engines.items()}
    assert results["yara-x"] == results["yara-python"]
    assert len(results["yara-x"]) > 10
    start = bytes([0x48, 0x89]) + b"\x00" * 64  # CM 8, CINFO 4: a small-window zlib header, object start only
    heads = {name: sorted(h.rule for h in e.scan(start, head=True)) for name, e in all_engines.items()}
    # the zeros after it are also a plain LZ77 flag word of literals: Xpress is tried there too
    assert heads["yara-x"] == heads["yara-python"] == ["xpress_start", "zlib_small_window"]
    big = start + r.randbytes(300_000)  # past yara-x's single-scanner size: the head scanner runs apart
    assert ("zlib_small_window", 0) in all_engines["yara-x"].scan(big, head=True)
    assert all(h.rule != "zlib_small_window" for h in all_engines["yara-x"].scan(big, head=False))


def test_compiled_rules_are_cached_and_reloaded(tmp_path):
    rules = RuleFiles.load(bundled_rules_dir())
    for name in engines.names():
        engines.get(name)(rules, tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert any(f.startswith("yara-python-") for f in files) and any(f.startswith("yara-x-") for f in files)
    for name in engines.names():  # loads from the cache now
        assert engines.get(name)(rules, tmp_path).meta


def test_every_rule_has_valid_meta(all_engines):
    e = all_engines["yara-python"]
    formats = {m.format for m in e.meta.values() if m.role in ("candidate", "anchored")}
    assert formats >= set(Format) - {Format.BROTLI}
    assert {m.encoding for m in e.meta.values() if m.role == "hint"} == {"base64", "hex"}


@pytest.mark.parametrize(
    "package,registry,skip",
    [
        (sensor.detect.verifiers, sensor.detect.verifiers.verifiers, sensor.detect.verifiers.NOT_PLUGINS),
        (sensor.content, decoders, sensor.content.NOT_PLUGINS),
        (sensor.protocols, sensor.protocols.extractors, sensor.protocols.NOT_PLUGINS),
        (sensor.hostevents, sensor.hostevents.parsers, sensor.hostevents.NOT_PLUGINS),
    ],
)
def test_each_plugin_module_registers_one_entry(package, registry, skip):
    modules = [m.name for m in pkgutil.iter_modules(package.__path__) if m.name not in skip]
    for mod in modules:
        importlib.import_module(f"{package.__name__}.{mod}")
    by_module: dict[str, list[str]] = {}
    for name in registry.names():
        by_module.setdefault(registry.modules[name].rsplit(".", 1)[-1], []).append(str(name))
    assert sorted(by_module) == sorted(modules)
    aliases = {"sevenzip": "7z", "hexrun": "hex", "ftp_data": "ftp-data"}
    for mod, names in by_module.items():
        assert names == [aliases.get(mod, mod)]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.booleans(), st.integers(0, 76))
def test_base64_decode_inverts_encode(data, urlsafe, wrap):
    import base64

    text = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    if wrap:
        text = b"\r\n".join(text[i : i + wrap * 4] for i in range(0, len(text), wrap * 4))
    assert (decode_b64(text) or b"") == data
