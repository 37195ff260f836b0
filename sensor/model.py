"""Value types that cross the pipeline's layers (DESIGN.md "Pipeline and data types")."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

# Anything the detector can slice: bytes for small objects, mmap/memoryview for big files.
Buffer = bytes | bytearray | memoryview


class Format(StrEnum):
    """`stagewatch.format`: the compressed, archive or encrypted format of a member."""

    GZIP = "gzip"
    ZLIB = "zlib"
    DEFLATE = "deflate"
    BZIP2 = "bzip2"
    XZ = "xz"
    LZMA = "lzma"
    ZSTD = "zstd"
    LZ4 = "lz4"
    SNAPPY = "snappy"
    BROTLI = "brotli"
    ZIP = "zip"
    SEVENZIP = "7z"
    RAR = "rar"
    CAB = "cab"
    TAR = "tar"
    # encrypted, by a library or its CLI (nothing to decompress: proof is structure)
    OPENSSL = "openssl"
    OPENPGP = "openpgp"
    AGE = "age"
    FERNET = "fernet"
    CMS = "cms"
    JWE = "jwe"
    # Windows' own compression (RtlCompressBuffer): no magic, tried at an object's start only
    LZNT1 = "lznt1"
    XPRESS = "xpress"
    XPRESS_HUFFMAN = "xpress_huffman"


class Kind(StrEnum):
    """ECS `event.kind`: alerts page an analyst, events are kept for hunting."""

    ALERT = "alert"
    EVENT = "event"


class Checksum(StrEnum):
    """`stagewatch.checksum`: the format's own integrity check, when the member decoded whole."""

    OK = "ok"
    BAD = "bad"
    NONE = "none"


class Proof(StrEnum):
    """Which clause of the verification rule (SIGNATURES.md §0 rule 5) a member met."""

    CHECKSUM = "checksum"  # (a) stream ended and its check passed
    STREAM_END = "stream_end"  # (a) for formats without a check: a clean end of stream
    OBJECT_END = "object_end"  # (b) data ended after >= 4 KiB of plausible output
    OUTPUT = "output"  # (c) 1 MiB of output without an error
    STRUCTURE = "structure"  # (d) >= 48 bits of magic, fields and header CRCs


class Limit(StrEnum):
    """Closed vocabulary of bounds; every hit is counted and shown on the finding."""

    OUTPUT_BYTES = "output_bytes"
    RATIO = "ratio"
    TIME = "time"
    DEPTH = "depth"
    CANDIDATES = "candidates"
    ENTRIES = "entries"
    ENCODED_BYTES = "encoded_bytes"
    MEMORY = "memory"  # a decoder asked for more memory than allowed (an LZMA dictionary of 2 GiB)
    READINGS = "readings"  # framings of one HTTP message beyond [limits] max_readings, not decoded
    TUNNEL_MEMORY = "tunnel_memory"  # a DNS tunnel decoded early (a memory cap) or its object cut at stream_depth


class Packet(NamedTuple):
    """One captured frame, as read from a capture file or a live socket."""

    ts: float
    linktype: int  # LINKTYPE_* of the frame's interface
    data: bytes
    index: int  # record number in the capture (1-based): the packet number analysts see
    wirelen: int  # length on the wire; larger than len(data) when the snaplen cut it
    source: str  # capture file (or interface)


class StreamChunk(NamedTuple):
    """In-order bytes of one TCP direction handed up at once, with where each packet's bytes start.

    `marks_off[i]` is the stream offset of the first byte of the i-th packet in the chunk, `marks[i]` its
    (capture time, packet number, capture file): a finding keeps the packet of its first byte.
    """

    offset: int  # stream offset of data[0]
    data: bytes
    marks_off: list[int]
    marks: list[tuple[float, int, str]]


class Segment(NamedTuple):
    """A decoded TCP segment or UDP datagram (IP fragments already reassembled)."""

    ts: float
    index: int  # packet number of the (last) frame that carried it
    src: bytes  # 4 or 16 address bytes
    dst: bytes
    sport: int
    dport: int
    proto: int  # 6 TCP, 17 UDP
    seq: int  # TCP sequence number (0 for UDP)
    flags: int  # TCP flags byte (0 for UDP)
    payload: bytes


@dataclass(frozen=True, slots=True)
class LimitHit:
    """A bound that stopped work: which, where (a short location) and the value reached."""

    limit: Limit
    where: str
    value: int


@dataclass(frozen=True, slots=True)
class FileOrigin:
    """A file on disk: the staged file a member was found in."""

    path: str
    size: int
    mtime: float
    owner: str | None
    host: str
    root: str  # the PATH argument the file was found under (`stagewatch.source.path`)


@dataclass(frozen=True, slots=True)
class NetworkOrigin:
    """Bytes of one direction of a flow: `src` sent them to `dst` (ECS source/destination)."""

    src: str
    sport: int
    dst: str
    dport: int
    transport: str  # "tcp" | "udp"
    direction: str  # ECS network.direction of these bytes: outbound, inbound, internal, external
    community_id: str
    flow_start: float  # the flow's first packet
    ts: float  # capture time of the packet carrying the member's first byte (set per finding)
    packet: int  # that packet's number in the capture
    source: str  # capture file or interface
    client_to_server: bool  # these bytes go from the connection's initiator to its responder
    protocol: str | None = None  # application protocol where known
    sni: str | None = None  # the TLS ClientHello's server name, when the flow opened with one


Origin = FileOrigin | NetworkOrigin


@dataclass(frozen=True, slots=True)
class DnsMeta:
    """What a DNS tunnel's object was made of (sensor/protocols/dns_tunnel.py)."""

    zone: str  # the parent zone the data labels sat under (the registered domain and constant labels)
    registered_domain: str  # dns.question.registered_domain (Public Suffix List eTLD+1)
    answers: bool  # the data came back in answers (TXT, NULL, CNAME...), not in query names
    queries: int  # messages whose data made the object
    first: float  # capture time of the first of them
    last: float  # and of the last
    sequence: str | None = None  # where the counter that ordered the messages sat, when one did
    lost: int = 0  # sequence numbers missing between the first and the last (lost queries)


@dataclass(frozen=True, slots=True)
class SensorRef:
    """Where another sensor (Zeek, Suricata) logged an object, for pivoting back to its logs (sensor/bridges/)."""

    sensor: str  # "zeek" | "suricata"
    log: str  # the log (files.log, eve.json) whose record described the object
    uid: str | None = None  # zeek.uid: the connection
    fuid: str | None = None  # zeek.fuid: the file
    flow_id: int | None = None  # suricata.flow_id
    file_id: int | None = None  # suricata's fileinfo.file_id (per flow)
    mime_type: str | None = None  # the type the sensor gave the file
    md5: str | None = None  # the hashes the sensor computed, where it did
    sha1: str | None = None
    sha256: str | None = None
    extracted: str | None = None  # the file holding its bytes (extract_files/..., filestore/xx/...), if kept


@dataclass(frozen=True, slots=True)
class AppMeta:
    """What an application protocol says about an object (ECS http.*, url.*, email.*)."""

    protocol: str  # "http" | "smtp" | "ftp"
    method: str | None = None  # http.request.method
    url: str | None = None  # url.original
    domain: str | None = None  # url.domain (the Host header)
    user_agent: str | None = None  # user_agent.original
    status: int | None = None  # http.response.status_code
    mail_from: str | None = None  # email.from.address (the envelope sender)
    rcpt_to: tuple[str, ...] = ()  # email.to.address (the envelope recipients)
    subject: str | None = None  # email.subject
    command: str | None = None  # the FTP command that moved the file (STOR, RETR...)
    reading: str | None = None  # the framing that gave this body, when receivers read the message differently
    anomalies: tuple[str, ...] = ()  # the irregularities of the message that carried it (stagewatch.http.anomalies)
    dns: DnsMeta | None = None  # a DNS tunnel's object: its zone and messages (dns.*, stagewatch.dns.*)
    sensor: SensorRef | None = None  # the object came from another sensor's logs (zeek.*, suricata.*)


@dataclass(frozen=True, slots=True)
class StreamDecode:
    """A member at an object's start that the protocol layer already decoded (an HTTP body's gzip or deflate
    Content-Encoding): its verifier proves it from this decode instead of inflating the bytes again.

    Kept only when the decode hit no cap, so it is exactly what the verifier's own decode would give.
    """

    format: Format
    start: int  # where the compressed stream begins in the object (after the format's header)
    output: bytes  # everything it decoded
    check: int  # the format's checksum of `output`: CRC-32 (gzip) or Adler-32 (zlib)
    consumed: int  # compressed bytes used, to the end of stream when `eof`
    eof: bool
    error: str | None
    head: bytes  # the first `inner_head` bytes of output
    data_ended: bool  # the object ran out before the stream ended


@dataclass(frozen=True, slots=True)
class ContentObject:
    """Bytes to scan and where they came from; `layers` lists the encodings peeled off."""

    origin: Origin
    data: Buffer
    name: str | None = None
    truncated: bool = False
    layers: tuple[str, ...] = ()
    index: int = 0  # the object's number within its flow (0 for a file)
    layer_offset: int | None = None  # where the encoded run sat in the original object
    app: AppMeta | None = None  # the protocol's metadata for an application object
    declared: Format | None = None  # the protocol says the object is this format (Content-Encoding)
    decoded: StreamDecode | None = None  # the member at its start, decoded once by the protocol layer
    # the sha256s of members found in the other readings of this object's message (HTTP framed several ways):
    # shared by those objects, so one member is one finding; None when the message has one reading
    found_alike: set[str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A YARA hit, still unproven: the rule that fired and the member's would-be start."""

    rule: str
    format: Format
    offset: int


@dataclass(frozen=True, slots=True)
class Inner:
    """What a bounded look inside the member found."""

    mime_type: str | None
    size: int  # decompressed bytes seen (all of them when `complete`)
    complete: bool
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChecksumFailures:
    """Which entries of an archive failed their own check (`stagewatch.checksum_failed`): a few names, and counts."""

    names: tuple[str, ...]  # the first few that failed, in archive order
    count: int  # entries whose check failed
    checked: int  # entries whose check ran (passed or failed)


@dataclass(frozen=True, slots=True)
class Member:
    """A verified compressed member or archive: where it sits, its carved hash, what it holds."""

    format: Format
    offset: int
    length: int
    sha256: str
    truncated: bool
    proof: Proof
    checksum: Checksum = Checksum.NONE
    checksum_failures: ChecksumFailures | None = None  # an archive's entries behind a bad checksum
    encrypted: bool = False
    compressed: bool = True  # False for tar and all-stored zip: archives without compression
    inner: Inner | None = None
    limits: tuple[LimitHit, ...] = ()
    stored_name: str | None = None  # gzip FNAME
    header_mtime: int | None = None  # gzip MTIME, often the time of compression
    writer: str | None = None  # library attribution from soft header fields
    detail: str | None = None  # format-specific note (AES strength, preset dictionary...)


@dataclass(frozen=True, slots=True)
class Container:
    """The object a member was found in (`stagewatch.container`)."""

    sha256: str | None  # None for a TCP stream, which is never held whole
    size: int
    mime_type: str | None


@dataclass(frozen=True, slots=True)
class Finding:
    """One verified member in one object, judged alert or event and scored."""

    event_id: str
    timestamp: float
    created: float
    observer: str
    origin: Origin
    member: Member
    container: Container
    encoding: tuple[str, ...]
    encoding_offset: int | None
    kind: Kind
    severity: int
    rule: str
    sensitive: tuple[str, ...]
    reasons: tuple[str, ...]  # why this kind and severity (`stagewatch.reasons`)
    object_index: int = 0  # the object's number in its stream direction (a gap starts a new one)
    name: str | None = None  # the application object's name (part filename, attachment, FTP path)
    app: AppMeta | None = None
    content_rules: tuple[str, ...] = ()  # user content rules that matched the decompressed head
    tuned: Tuned | None = None  # set by suppression or a threshold (`stagewatch.suppressed`/`threshold`)
    streams: StreamSummary | None = None  # a container's by-design members folded into this one finding


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """`stagewatch.streams`: the members a container holds by design, folded into its one finding.

    The finding itself (hash, offset, `event.id`) stays the first folded member's.
    """

    count: int  # members folded, the finding's own included
    formats: tuple[tuple[Format, int], ...]  # members per format, by format name
    bytes: int  # their carved (compressed) bytes, summed


@dataclass(frozen=True, slots=True)
class Tuned:
    """Why an analyst's tuning turned a result into an event: a suppression entry, or a threshold fold."""

    how: str  # "suppressed" | "threshold"
    entry: str  # the suppression entry's or threshold's name
    reason: str
    author: str | None = None
    first: str | None = None  # threshold: event.id of the alert this repeat is folded into
    count: int = 0  # threshold: repeats seen in the window so far, the alert included


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """One application object as Zeek's files.log has it (`--objects`), found member or not."""

    origin: NetworkOrigin
    index: int
    name: str | None
    size: int
    sha256: str
    mime_type: str | None
    layers: tuple[str, ...]
    truncated: bool
    app: AppMeta | None
    limits: tuple[LimitHit, ...] = ()  # bounds hit while scanning it (a decode depth, an encoded run's cap...)
    scanned: bool = True  # False: another sensor logged it without keeping its bytes (its size and hashes count)


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One flow as Zeek's conn.log has it: who talked to whom, how much, and how it ended."""

    community_id: str
    transport: str
    src: str  # the initiator (client)
    sport: int
    dst: str  # the responder (server)
    dport: int
    direction: str  # ECS network.direction of the initiator's bytes
    start: float
    end: float
    packets: tuple[int, int]  # client->server, server->client
    bytes: tuple[int, int]  # payload bytes, same order
    gaps: int
    gap_bytes: int
    overlaps: int
    overlap_conflicts: int
    end_reason: str
    mid_stream: bool  # picked up without a handshake
    depth_hit: bool
    sni: str | None
    source: str


@dataclass(frozen=True, slots=True)
class OpaqueFile:
    """A staged file of no known type whose bytes are near-uniform (`stagewatch.opaque`): an event, never a finding."""

    origin: FileOrigin
    sha256: str
    mime_type: str | None
    sample: int  # bytes the statistic was taken over
    entropy: float  # Shannon, bits per byte
    chi_square: float  # of the byte histogram, 255 degrees of freedom
    verdict: str


@dataclass(frozen=True, slots=True)
class Identity:
    """A name the wire gives an address: who had which address, from when (sensor/protocols/identity/)."""

    address: str
    name: str | None  # None: the address changed hands (a DHCPACK to another MAC) to a host that gave no name
    source: str  # dhcp | nbns | llmnr | mdns | kerberos | ntlm
    ts: float  # capture time of the packet that said so
    until: float | None = None  # a DHCP lease's end; None: until a claim of equal or higher trust replaces it
    mac: str | None = None
    detail: str | None = None  # how it was said: "DHCPACK option 12", "AS-REQ cname WS-07$@CORP.EXAMPLE"...
    capture: str = ""  # the capture file (or interface)
    packet: int = 0  # the packet's number in it


@dataclass(frozen=True, slots=True)
class NetTuple:
    """A connection as a host saw it (Sysmon Event ID 3, auditd connect): who talked to whom."""

    src: str
    sport: int
    dst: str
    dport: int
    transport: str  # "tcp" | "udp"


@dataclass(frozen=True, slots=True)
class HostEvent:
    """One host-telemetry record, normalized (Sysmon, Security 4688, PowerShell, auditd, SIEM exports).

    Field names follow Sysmon's meaning: `image` is the acting process, `target_file` a file it
    created, `loaded_image` a module it loaded. `code` is the native event id or record type.
    """

    ts: float  # UTC epoch seconds (System/TimeCreated, audit timestamp, EventTime read in --tz)
    source: str  # the file the record came from
    record_id: str  # EventRecordID, audit serial, row number: with `source` it names the record
    provider: str  # sysmon | security | powershell | auditd | qradar | sysmon-linux
    code: str  # "1", "3", "7", "11", "4688", "4104", "EXECVE", "CREATE"...
    action: str  # process | image_load | file_create | file_delete | network | script | other
    host: str | None = None
    host_ips: tuple[str, ...] = ()
    image: str | None = None
    command_line: str | None = None
    parent_image: str | None = None
    parent_command_line: str | None = None
    user: str | None = None
    pid: int | None = None
    ppid: int | None = None
    process_guid: str | None = None
    target_file: str | None = None
    loaded_image: str | None = None
    net: NetTuple | None = None
    hashes: str | None = None  # Sysmon's "SHA256=...,MD5=..." as written
    script: str | None = None  # PowerShell script block or pipeline text
    label: str | None = None  # a label the source already carries (QRadar DetectionSource)


@dataclass(frozen=True, slots=True)
class HostFinding:
    """A host event a host rule flags (DESIGN.md): alone it is never an incident."""

    finding_id: str  # UUIDv5 of observer, source file, record id, action and rule: stored once
    event: HostEvent
    rule_id: str
    rule: str  # the rule's title
    label: str  # the seed's DetectionSource vocabulary (CompressionDllLoad, PythonLibraryCompression...)
    operation: str  # compress | decompress | unknown: what the evidence says the process did
    severity: int
    techniques: tuple[str, ...]
    reasons: tuple[str, ...]
    tuned: Tuned | None = None  # set by suppression or a threshold


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of an incident: a finding, a host finding, a host event or a flow, by its stored id."""

    kind: str  # network | staged_file | host_rule | host_event | flow
    ref: str  # event.id, host finding id, host event key or flow id
    ts: float
    summary: str  # one line an analyst reads
    sha256: str | None = None
    source: str | None = None  # capture, file or telemetry file (with the record id for host events)


@dataclass(frozen=True, slots=True)
class Incident:
    """A correlated chain on one host: process -> staged file -> outbound transfer (DESIGN.md)."""

    incident_id: str  # UUIDv5 of its evidence refs: the same chain is stored once
    host: str | None
    host_ips: tuple[str, ...]
    start: float
    end: float
    kinds: tuple[str, ...]  # independent kinds present: host_rule, staged_file, network (>= 2)
    score: int
    reasons: tuple[str, ...]
    techniques: tuple[str, ...]
    process_image: str | None
    process_command_line: str | None
    process_pid: int | None
    user: str | None
    files: tuple[str, ...]  # staged paths or transferred names
    destinations: tuple[str, ...]  # ip:port of the transfers
    evidence: tuple[Evidence, ...]
    related: tuple[str, ...] = ()  # incidents on other hosts sharing a member's SHA-256: one campaign
    related_sha256: tuple[str, ...] = ()  # the hashes that link them
    host_named_by: str | None = None  # what tied the host's address to its name (host map, telemetry, DHCP...)


@dataclass(frozen=True, slots=True)
class SegmentDone:
    """Every result of one planned segment has been handed on: the store may mark it done (resume)."""

    key: str
    chain: str
    index: int
