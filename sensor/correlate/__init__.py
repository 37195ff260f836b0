"""Correlation: network, disk and host evidence joined into incidents (DESIGN.md "Incident")."""
