"""Host rules: the Sigma rules of signatures/host evaluated over HostEvents, and the compress/decompress check."""
