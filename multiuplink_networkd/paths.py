"""Every file name the product reads or owns, relative to a root directory.

All I/O goes through a root (``--root-dir``, default ``/``) so tests and the
generator never touch the host by accident.
"""

from __future__ import annotations

NETPLAN_DIRS = ("lib/netplan", "etc/netplan", "run/netplan")
"""netplan's search order: a later directory masks a file of the same name in an earlier one."""

STANZA_SUBDIR = "multiuplink.d"
"""Our stanza lives beside netplan's files, because netplan rejects unknown keys in its own."""

STANZA_DIRS = tuple(f"{directory}/{STANZA_SUBDIR}" for directory in NETPLAN_DIRS)

NETWORKD_DIR = "run/systemd/network"
DROPIN_NAME = "50-multiuplink.conf"
SYSCTL_FILE = "run/sysctl.d/50-multiuplink.conf"
STATE_DIR = "run/multiuplink"
NFT_RULESET = STATE_DIR + "/ruleset.nft"
IPTABLES_RULESET = STATE_DIR + "/ruleset.iptables"
IP6TABLES_RULESET = STATE_DIR + "/ruleset.ip6tables"
MANIFEST = STATE_DIR + "/manifest.json"
LOCK_FILE = STATE_DIR + "/lock"
JOURNAL = STATE_DIR + "/journal"
"""While it exists, a switch of the output files is under way: the next run completes it (host/writer.py)."""
APPLYING = STATE_DIR + "/applying"
"""While it exists the host may not follow the files (an apply is under way or was killed, or a generate
wrote files nobody applied): it holds the other manifest the host may be at, and the next apply redoes
every step."""

OWNED_GLOBS = (
    NETWORKD_DIR + "/10-netplan-*.network.d/" + DROPIN_NAME,
    SYSCTL_FILE,
    NFT_RULESET,
    IPTABLES_RULESET,
    IP6TABLES_RULESET,
    MANIFEST,
)
"""Everything we write matches one of these; anything matching that we did not just render is stale."""

def networkd_dropin(netplan_id: str) -> str:
    """The drop-in that networkd merges into netplan's ``10-netplan-<id>.network``."""
    return f"{NETWORKD_DIR}/10-netplan-{netplan_id}.network.d/{DROPIN_NAME}"
