"""Flows: frames decoded into TCP segments and UDP datagrams (IP fragments reassembled)."""
