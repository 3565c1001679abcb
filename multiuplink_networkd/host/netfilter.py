"""Hand the rendered ruleset to the kernel through the canonical loaders: ``nft -f`` or ``iptables-restore``.

Works in the caller's network namespace; a refusal is a :class:`~.commands.CommandFailed`
with the loader's own message, and leaves the kernel as it was before that call.
"""

from __future__ import annotations

import shutil

from ..render import iptables as iptables_format, nft as nft_format
from .commands import run, succeeds

NFT_TABLE = ("inet", nft_format.TABLE)


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
        """Whether the kernel still has it (``flush ruleset`` by nftables.service removes ours)."""
        if self.nft is not None and not succeeds(["nft", "list", "table", *NFT_TABLE]):
            return False
        return self.iptables is None or iptables_format.chains_present(_iptables_save())

    def install(self) -> None:
        """Load this ruleset and remove the other backend's, each in one transaction."""
        if self.nft is not None:
            run(["nft", "-f", "-"], self.nft)
        elif succeeds(["nft", "list", "table", *NFT_TABLE]):
            run(["nft", "delete", "table", *NFT_TABLE])
        saved = _iptables_save()
        if self.iptables is not None:
            run(["iptables-restore", "--noflush"], iptables_format.restore_input(self.iptables, saved))
        else:
            removal = iptables_format.removal_input(saved)
            if removal:
                run(["iptables-restore", "--noflush"], removal)


def _iptables_save() -> str:
    """Our table as ``iptables-save`` lists it; empty where iptables is not installed (no chains of ours then)."""
    if shutil.which("iptables-save") is None:
        return ""
    return run(["iptables-save", "-t", iptables_format.TABLE])
