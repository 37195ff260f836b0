"""The suppression index answers exactly as trying every entry in order would (property test), and files
entries by the key that narrows them most."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from sensor.tuning.facts import Facts, _normal
from sensor.tuning.index import EntryIndex
from sensor.tuning.suppress import Entry, Matcher

NETS = ["10.0.0.0/8", "10.1.2.0/24", "10.1.2.3/32", "198.51.100.0/24", "2001:db8::/32", "0.0.0.0/0"]
IPS = ["10.1.2.3", "10.9.9.9", "198.51.100.7", "203.0.113.5", "2001:db8::5", "fd00::1"]
DOMAINS = ["up.example.com", "a.b.example.com", "example.com", "cdn.fast.net", "xexample.com", "Up.Example.COM"]
PATTERNS = ["up.example.com", "*.example.com", "*.b.example.com", "example.com", "*.net", "up*.example.com", "*"]
SHAS = ["a" * 64, "b" * 64, "c" * 64]
URLS = ["/api/v2/sync", "/upload/x.gz", "/"]
URL_GLOBS = ["/api/*", "/upload/*", "*"]
FORMATS = ["gzip", "zip", "xz"]

KEYS = {
    "destination": st.lists(st.sampled_from(NETS), min_size=1, max_size=2),
    "source": st.lists(st.sampled_from(NETS), min_size=1, max_size=2),
    "domain": st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2),
    "sha256": st.lists(st.sampled_from(SHAS), min_size=1, max_size=2),
    "url": st.sampled_from(URL_GLOBS),
    "format": st.sampled_from(FORMATS),
}


@st.composite
def entry(draw: st.DrawFn) -> dict:
    keys = draw(st.lists(st.sampled_from(sorted(KEYS)), min_size=1, max_size=3, unique=True))
    return {k: draw(KEYS[k]) for k in keys}


facts = st.builds(
    lambda src, dst, domains, url, sha, fmt: _normal(
        Facts(src=src, dst=dst, domains=tuple(domains), url=url, sha256=tuple(sha), format=fmt)
    ),
    st.sampled_from(IPS),
    st.sampled_from(IPS),
    st.lists(st.sampled_from(DOMAINS), max_size=2),
    st.none() | st.sampled_from(URLS),
    st.lists(st.sampled_from(SHAS), max_size=2),
    st.sampled_from(FORMATS),
)


def entries_of(raws: list[dict]) -> list[Entry]:
    return [Entry(f"e{i}", "r", "a", None, Matcher.parse(raw, f"t:{i}"), f"t:{i}") for i, raw in enumerate(raws)]


@settings(max_examples=400, deadline=None)
@given(st.lists(entry(), min_size=1, max_size=12), st.lists(facts, min_size=1, max_size=8))
def test_the_index_finds_the_same_first_entry_as_a_scan(raws, many):
    entries = entries_of(raws)
    index = EntryIndex(entries)
    for f in many:
        linear = next((i for i, e in enumerate(entries) if e.match.matches(f)), None)
        indexed = next((i for i in index.candidates(f) if entries[i].match.matches(f)), None)
        assert indexed == linear


def test_entries_are_filed_by_their_narrowest_key():
    entries = entries_of(
        [
            {"sha256": SHAS[0], "destination": "10.0.0.0/8"},
            {"destination": "198.51.100.0/24", "domain": "*.example.com"},
            {"domain": ["*.example.com", "cdn.fast.net"]},
            {"domain": "up*.example.com"},
            {"url": "/api/*"},
        ]
    )
    index = EntryIndex(entries)
    assert index.rest == [3, 4]  # a glob inside the name, and a URL: tried for every result
    assert index.sha[SHAS[0]] == [0] and index.suffixes["example.com"] == [2] and index.domains["cdn.fast.net"] == [2]
    far = _normal(Facts(src="10.1.2.3", dst="203.0.113.5", domains=("other.org",), format="gzip"))
    assert index.candidates(far) == [3, 4]
