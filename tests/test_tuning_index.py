"""Suppression matching and its index: a glob holds for the whole value, every key an entry names must hold, and
the index finds the same first entry as trying every entry in order. The property test's oracle is written
here, from the entry as the analyst wrote it, not with the matcher under test."""

from __future__ import annotations

import ipaddress
import re

import hypothesis.strategies as st
import pytest
from hypothesis import example, given, settings

from sensor.tuning.facts import Facts, _normal
from sensor.tuning.index import EntryIndex
from sensor.tuning.suppress import Entry, Matcher

NETS = ["10.0.0.0/8", "10.1.2.0/24", "10.1.2.3/32", "198.51.100.0/24", "2001:db8::/32", "0.0.0.0/0"]
IPS = ["10.1.2.3", "10.9.9.9", "198.51.100.7", "203.0.113.5", "2001:db8::5", "fd00::1"]
# each pattern has look-alikes: a prefix added (`x` + name), the suffix moved inside, the bare parent domain
DOMAINS = [
    "up.example.com", "xup.example.com", "a.b.example.com", "example.com", "xexample.com", "Up.Example.COM",
    "example.com.evil.net", "backup.example.com", "xbackup.example.com", "cdn.fast.net", "net", "mirror.org",
    "org.evil.com",
]  # fmt: skip
PATTERNS = [
    "up.example.com", "backup.example.com", "*.example.com", "*.b.example.com", "example.com", "*.net", "*.org",
    "*.com", "up*.example.com", "?p.example.com", "*",
]  # fmt: skip
HOSTS = ["ws-01", "xws-01", "ws-01.corp", "build-7"]
HOST_GLOBS = ["ws-01", "build-*", "*-01"]
SHAS = ["a" * 64, "b" * 64, "c" * 64]
URLS = ["/api/v2/sync", "/upload/x.gz", "/", "/x/api/v2"]
URL_GLOBS = ["/api/*", "/upload/*", "*"]
FORMATS = ["gzip", "zip", "xz"]

KEYS = {
    "destination": st.lists(st.sampled_from(NETS), min_size=1, max_size=2),
    "source": st.lists(st.sampled_from(NETS), min_size=1, max_size=2),
    "domain": st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2),
    "sha256": st.lists(st.sampled_from(SHAS), min_size=1, max_size=2),
    "url": st.sampled_from(URL_GLOBS),
    "format": st.sampled_from(FORMATS),
    "host": st.sampled_from(HOST_GLOBS),
}


@st.composite
def entry(draw: st.DrawFn) -> dict:
    keys = draw(st.lists(st.sampled_from(sorted(KEYS)), min_size=1, max_size=3, unique=True))
    return {k: draw(KEYS[k]) for k in keys}


facts = st.fixed_dictionaries(
    {
        "src": st.sampled_from(IPS),
        "dst": st.sampled_from(IPS),
        "domains": st.lists(st.sampled_from(DOMAINS), max_size=2),
        "url": st.none() | st.sampled_from(URLS),
        "sha256": st.lists(st.sampled_from(SHAS), max_size=2),
        "format": st.sampled_from(FORMATS),
        "host": st.none() | st.sampled_from(HOSTS),
    }
)


def facts_of(raw: dict) -> Facts:
    return _normal(Facts(**{**raw, "domains": tuple(raw["domains"]), "sha256": tuple(raw["sha256"])}))


# -- the oracle: what the analyst means, written without the matcher --------------------------------------------


def glob(pattern: str, value: str | None) -> bool:
    """Whole value, case-insensitive: `*` any run of characters (dots and slashes too), `?` one character."""
    if value is None:
        return False
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, value.lower(), re.DOTALL) is not None


def inside(nets: list[str], ip: str | None) -> bool:
    return ip is not None and any(ipaddress.ip_address(ip) in ipaddress.ip_network(n) for n in nets)


def holds(e: dict, f: dict) -> bool:
    """Every key the entry names holds for the result; a list holds when any of its values does."""
    one = {
        "destination": lambda v: inside(v, f["dst"]),
        "source": lambda v: inside(v, f["src"]),
        "domain": lambda v: any(glob(p, d) for p in v for d in f["domains"]),
        "sha256": lambda v: bool(set(v) & set(f["sha256"])),
        "url": lambda v: glob(v, f["url"]),
        "format": lambda v: f["format"] == v,
        "host": lambda v: glob(v, f["host"]),
    }
    return all(one[k](v) for k, v in e.items())


def entries_of(raws: list[dict]) -> list[Entry]:
    return [Entry(f"e{i}", "r", "a", None, Matcher.parse(raw, f"t:{i}"), f"t:{i}") for i, raw in enumerate(raws)]


def fact(**given: object) -> dict:
    base: dict = {"src": "10.9.9.9", "dst": "203.0.113.5", "domains": [], "url": None, "sha256": [], "format": "xz"}
    return {**base, "host": None, **given}


@settings(max_examples=400, deadline=None)
@given(st.lists(entry(), min_size=1, max_size=12), st.lists(facts, min_size=1, max_size=8))
@example(  # look-alikes of exact names and suffixes
    [{"domain": ["backup.example.com"]}, {"domain": ["*.example.com"], "format": "gzip"}],
    [fact(domains=["xbackup.example.com"]), fact(domains=["example.com.evil.net"], format="gzip"),
     fact(domains=["example.com"], format="gzip"), fact(domains=["Backup.Example.com"])],
)  # fmt: skip
@example(  # two keys, one of them holding
    [{"source": ["10.1.2.0/24"], "destination": ["198.51.100.0/24"]}, {"domain": ["*.net"], "sha256": [SHAS[0]]}],
    [fact(src="10.1.2.3"), fact(dst="198.51.100.7"), fact(src="10.1.2.3", dst="198.51.100.7"),
     fact(domains=["cdn.fast.net"], sha256=[SHAS[1]]), fact(sha256=[SHAS[0]])],
)  # fmt: skip
@example(  # one-label suffixes, and the bare label
    [{"domain": ["*.net"]}, {"domain": ["*.org", "up.example.com"]}],
    [fact(domains=["cdn.fast.net"]), fact(domains=["net"]), fact(domains=["mirror.org"]),
     fact(domains=["org.evil.com"])],
)  # fmt: skip
def test_the_index_and_the_matcher_find_what_the_entries_say(raws, many):
    entries = entries_of(raws)
    index = EntryIndex(entries)
    for raw in many:
        f = facts_of(raw)
        wanted = [holds(e, raw) for e in raws]
        assert [e.match.matches(f) for e in entries] == wanted, raw
        first = wanted.index(True) if any(wanted) else None
        assert next((i for i in index.candidates(f) if entries[i].match.matches(f)), None) == first, raw


@pytest.mark.parametrize(
    ("entry", "result", "hit"),
    [
        ({"domain": "backup.example.com"}, fact(domains=["backup.example.com"]), True),
        ({"domain": "backup.example.com"}, fact(domains=["xbackup.example.com"]), False),
        ({"domain": "backup.example.com"}, fact(domains=["backup.example.com.evil.net"]), False),
        ({"domain": "*.example.com"}, fact(domains=["a.b.example.com"]), True),
        ({"domain": "*.example.com"}, fact(domains=["example.com.evil.net"]), False),
        ({"domain": "*.example.com"}, fact(domains=["example.com"]), False),
        ({"domain": "*.example.com"}, fact(domains=["xexample.com"]), False),
        ({"domain": "*.net"}, fact(domains=["cdn.fast.net"]), True),
        ({"domain": "*.net"}, fact(domains=["net.evil.org"]), False),
        ({"domain": " backup.example.com "}, fact(domains=["backup.example.com"]), True),  # as the index files it
        ({"host": "ws-01"}, fact(host="xws-01"), False),
        ({"host": "ws-01"}, fact(host="ws-01.corp"), False),
        ({"url": "/api/*"}, fact(url="/x/api/v2"), False),
        ({"source": "10.1.2.0/24", "destination": "198.51.100.0/24"}, fact(src="10.1.2.3"), False),
        ({"source": "10.1.2.0/24", "destination": "198.51.100.0/24"}, fact(dst="198.51.100.7"), False),
        ({"source": "10.1.2.0/24", "destination": "198.51.100.0/24"}, fact(src="10.1.2.3", dst="198.51.100.7"), True),
        ({"domain": "*.net", "format": "gzip"}, fact(domains=["cdn.fast.net"]), False),
        ({"sha256": SHAS[0], "destination": "198.51.100.0/24"}, fact(sha256=[SHAS[0]]), False),
    ],
)  # fmt: skip
def test_an_entry_matches_whole_values_and_needs_every_key_it_names(entry, result, hit):
    entries = entries_of([{"url": "/never/*"}, entry])  # the index must find it past another entry
    f = facts_of(result)
    assert entries[1].match.matches(f) is hit
    assert [i for i in EntryIndex(entries).candidates(f) if entries[i].match.matches(f)] == ([1] if hit else [])


def test_entries_are_filed_by_their_narrowest_key():
    entries = entries_of(
        [
            {"sha256": SHAS[0], "destination": "10.0.0.0/8"},
            {"destination": "198.51.100.0/24", "domain": "*.example.com"},
            {"domain": ["*.example.com", "cdn.fast.net"]},
            {"domain": "up*.example.com"},
            {"url": "/api/*"},
            {"domain": "*.net"},
        ]
    )
    index = EntryIndex(entries)
    assert index.rest == [3, 4]  # a glob inside the name, and a URL: tried for every result
    assert index.sha[SHAS[0]] == [0] and index.suffixes["example.com"] == [2] and index.domains["cdn.fast.net"] == [2]
    assert index.suffixes["net"] == [5]  # a one-label suffix is filed, and found from any name under it
    far = _normal(Facts(src="10.1.2.3", dst="203.0.113.5", domains=("other.org",), format="gzip"))
    assert index.candidates(far) == [3, 4]
    assert index.candidates(_normal(Facts(domains=("a.b.fast.net",)))) == [3, 4, 5]
