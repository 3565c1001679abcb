"""Hand the rendered ruleset to the kernel through the canonical loaders: ``nft -f`` or ``iptables-restore``.

Works in the caller's network namespace; a refusal is a :class:`~.commands.CommandFailed`
with the loader's own message, and leaves the kernel as it was before that call.
"""

from __future__ import annotations

import shutil

from ..render import iptables as iptables_format, nft as nft_format
from .commands import run, succeeds

NFT_TABLE = ("inet", nft_format.TABLE)
ABSENT, FLUSHED, LOADED = "absent", "flushed", "loaded"


class Ruleset:
    """The ruleset of one configuration: nft text, iptables-restore text, or none at all."""

    __slots__ = ("iptables", "nft")

    def __init__(self, nft: str | None, iptables: str | None) -> None:
        self.nft = nft
        self.iptables = iptables

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ruleset) and (self.nft, self.iptables) == (other.nft, other.iptables)

    def __hash__(self) -> int:
        return hash((self.nft, self.iptables))

    def live(self) -> bool:
        """Whether the kernel has it as rendered (``flush ruleset`` by nftables.service removes ours)."""
        return self.state("nft") in (None, LOADED) and self.state("iptables") in (None, LOADED)

    def state(self, backend: str) -> str | None:
        """``loaded``, ``flushed`` (there, but rules are missing) or ``absent``; None if it has nothing for it."""
        if backend == "nft" and self.nft is not None:
            if not nft_loaded():
                return ABSENT
            listed = run(["nft", "-j", "list", "table", *NFT_TABLE])
            return LOADED if nft_format.loaded_as_rendered(self.nft, listed) else FLUSHED
        if backend == "iptables" and self.iptables is not None:
            saved = _iptables_save()
            if not iptables_format.chains_present(saved):
                return ABSENT
            return LOADED if iptables_format.loaded_as_rendered(self.iptables, saved) else FLUSHED
        return None

    def install(self) -> None:
        """Load this ruleset and remove the other backend's, each in one transaction."""
        if self.nft is not None:
            run(["nft", "-f", "-"], self.nft)
        elif nft_loaded():
            run(["nft", "delete", "table", *NFT_TABLE])
        saved = _iptables_save()
        if self.iptables is not None:
            run(["iptables-restore", "--noflush"], iptables_format.restore_input(self.iptables, saved))
        else:
            removal = iptables_format.removal_input(saved)
            if removal:
                run(["iptables-restore", "--noflush"], removal)


def nft_loaded() -> bool:
    return succeeds(["nft", "list", "table", *NFT_TABLE])


def iptables_loaded() -> bool:
    return iptables_format.chains_present(_iptables_save())


def counters() -> dict[str, tuple[int, int]]:
    """Every live counter of ours, by name (:mod:`..render.counters`): ``(packets, bytes)``, from either backend."""
    found = {}
    if nft_loaded():
        found.update(nft_format.read_counters(run(["nft", "-j", "list", "counters", "table", *NFT_TABLE])))
    if shutil.which("iptables-save") is not None:
        found.update(iptables_format.read_counters(run(["iptables-save", "-c", "-t", iptables_format.TABLE])))
    return found


def _iptables_save() -> str:
    """Our table as ``iptables-save`` lists it; empty where iptables is not installed (no chains of ours then)."""
    if shutil.which("iptables-save") is None:
        return ""
    return run(["iptables-save", "-t", iptables_format.TABLE])
