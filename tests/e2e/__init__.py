"""Privileged end-to-end harness: real network namespaces, a real
systemd-networkd and real netfilter, never the host's own network stack.

Everything here runs as root with CAP_NET_ADMIN and only ever touches
namespaces it created itself (names start with ``mu``), which it deletes
again, also when a test fails.
"""
