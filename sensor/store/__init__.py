"""Findings store: schema and queries on SQLAlchemy Core (SQLite embedded, PostgreSQL shared)."""
