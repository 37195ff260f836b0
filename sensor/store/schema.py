"""Tables of the findings store; only portable types, so SQLite and PostgreSQL share one schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# Bump when a table changes; a store written by a newer stagewatch is refused, never altered.
# 2: host_events, host_findings, incidents and segments added (an older store gains them when opened)
# 3: objects added (application objects, as Zeek's files.log); findings.run_id is the run that last judged
#    the finding (a re-scan with other settings replaces its record)
# 4: identities added (host names the wire gives addresses: DHCP, NetBIOS, LLMNR, mDNS, Kerberos, NTLMSSP)
SCHEMA_VERSION = 4

# Fixed names, so constraints and indexes are called the same on every database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started", Float, nullable=False),
    Column("ended", Float, nullable=True),
    Column("observer", String, nullable=False),
    Column("argv", Text, nullable=False),  # JSON list
    Column("stats", Text, nullable=True),  # JSON object (RunStats.as_dict), set when the run ends
    Column("status", String, nullable=False),
)

findings = Table(
    "findings",
    metadata,
    Column("event_id", String(36), primary_key=True),  # UUIDv5: the same finding is stored once
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("ts", Float, nullable=False),  # @timestamp, epoch seconds
    Column("created", Float, nullable=False),  # event.created, epoch seconds
    Column("kind", String(8), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("rule", String, nullable=False),
    Column("format", String, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("host", String, nullable=True),
    Column("path", Text, nullable=True),
    Column("record", Text, nullable=False),  # the full ECS JSON line, as written to --jsonl
    Index(None, "ts"),
    Index(None, "sha256"),
    Index(None, "host"),
    Index(None, "kind"),
)

flows = Table(
    "flows",
    metadata,
    Column("flow_id", String(36), primary_key=True),  # UUIDv5 of observer, community ID and start
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("community_id", String(64), nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("src", String, nullable=False),
    Column("dst", String, nullable=False),
    Column("bytes_out", BigInteger, nullable=False),  # initiator -> responder payload bytes
    Column("bytes_in", BigInteger, nullable=False),
    Column("record", Text, nullable=False),  # the --flows JSON line
    Index(None, "start"),
    Index(None, "community_id"),
)

host_events = Table(
    "host_events",
    metadata,
    Column("event_key", String(40), primary_key=True),  # sha1 of source, record id, action, code, target
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("ts", Float, nullable=False),
    Column("host", String, nullable=True),
    Column("host_ips", Text, nullable=False),  # JSON list
    Column("provider", String(16), nullable=False),
    Column("code", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("image", Text, nullable=True),
    Column("command_line", Text, nullable=True),
    Column("parent_image", Text, nullable=True),
    Column("user", String, nullable=True),
    Column("pid", BigInteger, nullable=True),
    Column("ppid", BigInteger, nullable=True),
    Column("target_file", Text, nullable=True),
    Column("loaded_image", Text, nullable=True),
    Column("src", String, nullable=True),
    Column("sport", Integer, nullable=True),
    Column("dst", String, nullable=True),
    Column("dport", Integer, nullable=True),
    Column("transport", String(8), nullable=True),
    Column("hashes", Text, nullable=True),
    Column("label", String, nullable=True),
    Column("source", Text, nullable=False),
    Column("record_id", String, nullable=False),
    Index(None, "ts"),
    Index(None, "host"),
    Index(None, "action"),
)

host_findings = Table(
    "host_findings",
    metadata,
    Column("finding_id", String(36), primary_key=True),  # UUIDv5: the same rule hit is stored once
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("ts", Float, nullable=False),
    Column("host", String, nullable=True),
    Column("host_ips", Text, nullable=False),  # JSON list
    Column("rule_id", String(36), nullable=False),
    Column("label", String, nullable=False),
    Column("operation", String(12), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("event_key", String(40), nullable=False),  # host_events.event_key of the flagged event
    Column("record", Text, nullable=False),  # the ECS JSON line
    Index(None, "ts"),
    Index(None, "host"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", String(36), primary_key=True),  # UUIDv5 of the evidence refs
    Column("created", Float, nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("host", String, nullable=True),
    Column("score", Integer, nullable=False),
    Column("record", Text, nullable=False),  # the ECS JSON line
    Index(None, "start"),
    Index(None, "host"),
)

objects = Table(
    "objects",
    metadata,
    Column("object_id", String(36), primary_key=True),  # UUIDv5 of the flow id, direction, index, layers, sha256
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("flow_id", String(36), nullable=False),  # flows.flow_id of the connection that carried it
    Column("ts", Float, nullable=False),  # capture time of the object's first byte
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("name", Text, nullable=True),
    Column("mime_type", String, nullable=True),
    Column("record", Text, nullable=False),  # the --objects JSON line
    Index(None, "ts"),
    Index(None, "flow_id"),
    Index(None, "sha256"),
)

identities = Table(
    "identities",
    metadata,
    Column("identity_id", String(36), primary_key=True),  # UUIDv5 of what was said, by whom, where and when
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("ts", Float, nullable=False),  # capture time of the packet that said it
    Column("until", Float, nullable=True),  # a DHCP lease's end
    Column("address", String(45), nullable=False),
    Column("name", Text, nullable=True),  # NULL: the address went to a MAC that gave no name
    Column("mac", String(64), nullable=True),
    Column("source", String(16), nullable=False),  # dhcp | nbns | llmnr | mdns | kerberos | ntlm
    Column("record", Text, nullable=False),  # the JSON record (`stagewatch hosts --jsonl`)
    Index(None, "address"),
    Index(None, "ts"),
)

segments = Table(
    "segments",
    metadata,
    Column("segment_key", String(40), primary_key=True),  # Segment.key: files, sizes, read-back/ahead
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("chain", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("finished", Float, nullable=False),
)
