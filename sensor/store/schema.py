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
SCHEMA_VERSION = 1

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
