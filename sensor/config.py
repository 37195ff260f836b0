"""Settings, with every default in one place, read from TOML and overridden by flags."""

from __future__ import annotations

import ipaddress
import socket
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sensor.errors import ConfigError, RuleError

KiB = 1024
MiB = 1024 * KiB
# What one open flow counts against the memcap besides its buffered bytes, in both cores (Suricata's
# flow.memcap beside stream.memcap is the model): a flood of connections that never send much is
# bounded like a few connections that send a lot.
FLOW_COST = 2 * KiB

DEFAULT_SENSITIVE_NAMES = (
    "passwd",
    "shadow",
    "gshadow",
    "sudoers",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    "known_hosts",
    ".bash_history",
    "*.kdbx",
    "*.kdb",
    "wallet.dat",
    "Login Data",
    "Web Data",
    "Cookies",
    "key3.db",
    "key4.db",
    "logins.json",
    "ntds.dit",
    "SAM",
    "SYSTEM",
    "SECURITY",
    "NTUSER.DAT",
    "*.pst",
    "*.ost",
    "*.pfx",
    "*.p12",
    "*.pem",
    "*.ppk",
    "*.ovpn",
    "credentials",
    "lsass*.dmp",
    # what info-stealers put in the archives they send (names seen in real stealer uploads)
    "passwords.txt",
    "*passwords*.txt",
    "*cookies*.txt",
)


def bundled_signatures() -> Path:
    """The bundled signatures/ folder: the repository's in a checkout, sensor/signatures in an installed wheel."""
    package = Path(__file__).resolve().parent
    for cand in (package.parent / "signatures", package / "signatures"):
        if (cand / "compression.yar").is_file():
            return cand
    raise RuleError(str(package / "signatures"), "rule folder not found (a broken install?)")


def local_addresses() -> tuple[str, ...]:
    """The addresses this machine sends from by default: a UDP connect picks a route and sends nothing."""
    found: list[str] = []
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                found.append(s.getsockname()[0])
        except OSError:
            continue  # no route for this family (an isolated namespace): nothing to report
    return tuple(found)


def parse_ips(value: str | list[str] | tuple[str, ...], where: str) -> tuple[str, ...]:
    """Addresses from a comma list or a TOML array, each checked; a bad one is a ConfigError."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        try:
            out.append(str(ipaddress.ip_address(str(item).strip())))
        except ValueError as e:
            raise ConfigError(where, f"observer_ip: {e}") from e
    return tuple(out)


_SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | float, where: str, key: str) -> float:
    """Seconds from "30d", "12h", "15m", "30s" or a plain number; zero, negative or unreadable is a ConfigError."""
    text = str(value).strip().lower()
    try:
        seconds = float(text[:-1]) * _SPAN_UNITS[text[-1]] if text and text[-1] in _SPAN_UNITS else float(text)
    except ValueError:
        seconds = float("nan")
    if not (0 < seconds < float("inf")):
        raise ConfigError(where, f"{key}: {value!r} is not a span like 30d, 12h, 15m or seconds")
    return seconds


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the work spent on one object or member; hitting one is a LimitHit."""

    max_output: int = 256 * MiB  # decompressed bytes per member (carving decodes to the end)
    max_ratio: int = 1000  # output/input, checked once 1 MiB has come out
    max_seconds: float = 10.0  # wall time per member decode
    max_depth: int = 8  # nested encodings (base64 inside hex inside ...): 8 base64 layers in a JSON value
    max_encoded: int = 64 * MiB  # bytes of one base64/hex run decoded for a rescan
    max_entries: int = 10_000  # archive entries listed
    max_names: int = 1_000  # names kept on a finding
    max_readings: int = 4  # framings of one HTTP message decoded where receivers disagree (chunked, lengths, close)
    inner_head: int = 64 * KiB  # decompressed bytes kept for libmagic
    content_head: int = 1 * MiB  # decompressed bytes user content rules see (--rules), when there are any
    window: int = 1 * MiB  # YARA window; keeps every string under libyara's 1M-match cap
    overlap: int = 4 * KiB  # window overlap (longest pattern, tar's 257+8 included)
    candidate_flood: int = 20_000  # candidates per window before the rest are skipped
    yara_timeout: int = 60  # seconds per window
    stream_depth: int = 16 * MiB  # bytes kept per TCP direction (Suricata's stream.reassembly.depth)
    memcap: int = 256 * MiB  # buffered stream bytes + FLOW_COST per open flow, before the oldest flows are evicted
    max_flows: int = 50_000  # open flows (TCP and UDP) before the least recently active are closed (~6 KiB each)
    chunk_size: int = 64 * KiB  # a TCP direction's bytes handed to the layers above at once (sensor/flow/chunker.py)
    chunk_delay: float = 1.0  # seconds of capture time a chunk may wait for more before it goes up anyway
    max_pending: int = 4 * MiB  # out-of-order bytes held behind a hole before it is declared a gap
    flow_timeout: float = 300.0  # seconds of capture time without a packet before a flow is closed
    max_fragments: int = 4096  # IP fragments buffered for reassembly, all datagrams together
    fragment_timeout: float = 30.0  # seconds of capture time a datagram may wait for its fragments
    dns_timeout: float = 300.0  # seconds of capture time a DNS tunnel may pause before what it sent is decoded
    dns_client_bytes: int = 16 * MiB  # DNS names and answer data held per client before its largest tunnel is decoded
    dns_memcap: int = 64 * MiB  # held for all clients together before the longest idle tunnels are decoded


@dataclass(frozen=True, slots=True)
class Correlate:
    """How `correlate` joins evidence (the [correlate] table)."""

    # a member of at least this many bytes joins a staged file of the same SHA-256 however far apart their
    # times (files are often collected long after they were staged); below it, a common small file's hash
    # would link unrelated events, so the window applies
    hash_link_min_size: int = 512


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a scan needs to know; built once by the CLI or the API."""

    limits: Limits = field(default_factory=Limits)
    correlate: Correlate = field(default_factory=Correlate)
    engine: str = "yara-x"
    observer: str = field(default_factory=socket.gethostname)
    observer_ip: tuple[str, ...] = field(default_factory=lambda: local_addresses())  # --observer-ip
    host: str | None = None  # --host-name
    host_from_path: str | None = None  # --host-from-path REGEX (group 1 or 'host')
    sensitive_names: tuple[str, ...] = DEFAULT_SENSITIVE_NAMES
    home_net: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
    home_domains: tuple[str, ...] = ()  # the site's DNS zones (Zeek's Site::local_zones); a tunnel elsewhere leaves
    rules_dir: Path | None = None  # defaults to the bundled signatures/
    host_rules_dir: Path | None = None  # Sigma host rules; defaults to the bundled signatures/host
    user_rules: Path | None = None  # --rules DIR: the analyst's YARA (detection, content) and Sigma rules
    suppress: Path | None = None  # --suppress FILE: suppression entries and thresholds (YAML)
    cache_dir: Path | None = None  # compiled-rule cache; None = ~/.cache/stagewatch
    app_layer: bool = True  # parse HTTP/SMTP/FTP into objects; False scans every stream raw (--raw-only)
    objects: bool = False  # produce an ObjectRecord per application object (--objects; stored, queryable)
    extract_dir: Path | None = None  # --extract DIR: carved members written by sha256
    tz: str = "UTC"  # --tz: the zone of host-event timestamps that carry none (QRadar EventTime)
    retention: float | None = None  # seconds ("30d" in TOML): live/watch prune older rows daily; None keeps all


def _limit(config: Path | None, key: str, value: object) -> int | float:
    """One [limits] value checked against its default's kind: a count or size is a whole number, a time may
    have a fraction; neither is negative (the compiled core takes them as C numbers)."""
    default = Limits.__dataclass_fields__[key].default
    whole = isinstance(default, int)
    ok = isinstance(value, int) if whole else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or value < 0:  # type: ignore[operator]
        kind = "a whole number" if whole else "a number of seconds"
        raise ConfigError(str(config), f"[limits] {key} = {value!r}: must be {kind}, 0 or more")
    return value  # type: ignore[return-value]


_TEXT_KEYS = ("engine", "observer", "host", "host_from_path", "tz", "rules_dir", "host_rules_dir", "user_rules",
              "suppress", "cache_dir", "extract_dir")  # fmt: skip
_LIST_KEYS = ("sensitive_names", "home_net", "home_domains")


def _check_types(config: Path, data: dict[str, Any]) -> None:
    """Each known key of a config file holds the kind of value it needs: one line naming the key otherwise
    (a number where a path goes reached Path() as a traceback)."""

    def bad(key: str, want: str) -> ConfigError:
        return ConfigError(str(config), f"{key} = {data[key]!r}: must be {want}")

    for table in ("limits", "correlate"):
        if table in data and not isinstance(data[table], dict):
            raise bad(table, f"a table ([{table}])")
    for key in _TEXT_KEYS:
        if key in data and not isinstance(data[key], str):
            raise bad(key, "a string")
    for key in _LIST_KEYS:
        if key in data and not (isinstance(data[key], list) and all(isinstance(v, str) for v in data[key])):
            raise bad(key, "a list of strings")
    for key in ("app_layer", "objects"):
        if key in data and not isinstance(data[key], bool):
            raise bad(key, "true or false")
    if "observer_ip" in data and not isinstance(data["observer_ip"], str | list):
        raise bad("observer_ip", "a string or a list of strings")
    if "retention" in data and (
        isinstance(data["retention"], bool) or not isinstance(data["retention"], str | int | float)
    ):
        raise bad("retention", "a span like 30d or a number of seconds")


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from an optional TOML file (`[limits]` table + top-level keys), then flags."""
    data: dict[str, Any] = {}
    if config is not None:
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(str(config), e.strerror or str(e)) from e
        except UnicodeDecodeError as e:
            raise ConfigError(str(config), f"not UTF-8 text (byte {e.start}): TOML files are UTF-8") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(str(config), f"invalid TOML: {e}") from e
        _check_types(config, data)
    limit_keys = {f.name for f in fields(Limits)}
    raw_limits = data.pop("limits", {})
    unknown = set(raw_limits) - limit_keys
    if unknown:
        raise ConfigError(str(config), f"unknown [limits] keys: {', '.join(sorted(unknown))}")
    limits = replace(Limits(), **{k: _limit(config, k, v) for k, v in raw_limits.items()})
    raw_correlate = data.pop("correlate", {})
    unknown = set(raw_correlate) - {f.name for f in fields(Correlate)}
    if unknown:
        raise ConfigError(str(config), f"unknown [correlate] keys: {', '.join(sorted(unknown))}")
    for key, value in raw_correlate.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(str(config), f"[correlate] {key} = {value!r}: must be a whole number, 0 or more")
    correlate = Correlate(**raw_correlate)
    setting_keys = {f.name for f in fields(Settings)} - {"limits", "correlate"}
    unknown = set(data) - setting_keys
    if unknown:
        raise ConfigError(str(config), f"unknown keys: {', '.join(sorted(unknown))}")
    for key in ("sensitive_names", "home_net", "home_domains"):
        if key in data:
            data[key] = tuple(data[key])
    for key in ("rules_dir", "cache_dir", "host_rules_dir", "user_rules", "suppress", "extract_dir"):
        if key in data:
            data[key] = Path(data[key])
    if "retention" in data:
        data["retention"] = parse_duration(data["retention"], str(config), "retention")
    data.update({k: v for k, v in overrides.items() if v is not None})
    if "observer_ip" in data:
        where = "--observer-ip" if overrides.get("observer_ip") is not None else str(config)
        data["observer_ip"] = parse_ips(data["observer_ip"], where)
    return Settings(limits=limits, correlate=correlate, **data)
