"""Hand rendered files to the kernel through the canonical loaders: ``nft -f``, ``iptables-restore``, sysctl.

Each function works in the caller's network namespace and raises
:class:`LoadError` with the loader's own message when the kernel refuses.
"""

from __future__ import annotations

import os
import subprocess

from .render import iptables as iptables_render
from .render import nft as nft_render

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

SYSCTL_CONF = "/proc/sys/net/ipv4/conf"


class LoadError(Exception):
    """A loader refused what we gave it; the kernel state is whatever it was before that call."""


def _run(argv: Sequence[str], text: str | None = None) -> str:
    try:
        done = subprocess.run(list(argv), input=text, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise LoadError(f"{argv[0]} is not installed") from None
    if done.returncode != 0:
        raise LoadError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


# --- nftables ---------------------------------------------------------------

def nft_table_present() -> bool:
    try:
        _run(["nft", "list", "table", "inet", nft_render.TABLE])
    except LoadError:
        return False
    return True


def load_nft(ruleset: str) -> None:
    """One ``nft -f`` transaction: the old table is replaced, or nothing changes."""
    _run(["nft", "-f", "-"], ruleset)


def unload_nft() -> None:
    if nft_table_present():
        _run(["nft", "delete", "table", "inet", nft_render.TABLE])


# --- iptables ---------------------------------------------------------------

def _iptables_save() -> str:
    return _run(["iptables-save", "-t", "mangle"])


def iptables_chains_present() -> bool:
    return f":{iptables_render.HOOKS[0][1]} " in _iptables_save()


def load_iptables(ruleset: str) -> None:
    """``iptables-restore --noflush`` in one transaction, adding the jumps only where missing."""
    current = _iptables_save()
    jumps = [f"-I {builtin} 1 -j {chain}" for builtin, chain in iptables_render.HOOKS
             if f"-A {builtin} -j {chain}" not in current]
    body = ruleset.rstrip("\n").rsplit("\n", 1)
    text = "\n".join([body[0], *jumps, body[1]]) + "\n"  # jumps go before the final COMMIT
    _run(["iptables-restore", "--noflush"], text)


def unload_iptables() -> None:
    current = _iptables_save()
    lines = ["*mangle"]
    for builtin, chain in iptables_render.HOOKS:
        if f"-A {builtin} -j {chain}" in current:
            lines.append(f"-D {builtin} -j {chain}")
    for _, chain in iptables_render.HOOKS:
        if f":{chain} " in current:
            lines += [f"-F {chain}", f"-X {chain}"]
    if len(lines) > 1:
        _run(["iptables-restore", "--noflush"], "\n".join(lines + ["COMMIT"]) + "\n")


# --- sysctl -----------------------------------------------------------------

def parse_sysctl(text: str) -> dict[str, int]:
    """``{interface: rp_filter}`` from our own sysctl.d file (we wrote it, so the format is fixed)."""
    values = {}
    for line in text.splitlines():
        if line.startswith("net/ipv4/conf/"):
            key, value = line.split(" = ")
            values[key.split("/")[3]] = int(value)
    return values


def read_rp_filter(interface: str) -> int | None:
    try:
        with open(f"{SYSCTL_CONF}/{interface}/rp_filter", encoding="ascii") as stream:
            return int(stream.read())
    except (FileNotFoundError, ValueError):
        return None


def write_rp_filter(interface: str, value: int) -> None:
    """Set it now if the interface exists; a later interface gets it from sysctl.d through udev."""
    path = f"{SYSCTL_CONF}/{interface}/rp_filter"
    if os.path.exists(path):
        with open(path, "w", encoding="ascii") as stream:
            stream.write(f"{value}\n")


def default_rp_filter() -> int:
    """What an interface would have without us: the namespace's ``default`` value."""
    value = read_rp_filter("default")
    return 0 if value is None else value
