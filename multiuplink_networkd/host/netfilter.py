"""Hand the rendered ruleset to the kernel through the canonical loaders: ``nft -f`` or ``ip(6)tables-restore``.

Works in the caller's network namespace; a refusal is a :class:`~.commands.CommandFailed`
with the loader's own message, and leaves the kernel as it was before that call.
"""

from __future__ import annotations

import shutil

from .. import paths
from ..render import iptables as iptables_format, nft as nft_format
from .commands import run, succeeds

NFT_TABLE = ("inet", nft_format.TABLE)
ABSENT, FLUSHED, LOADED = "absent", "flushed", "loaded"


class Ruleset:
    """The ruleset of one configuration: nft text, or iptables-restore text per family, or none at all."""

    __slots__ = ("ip6tables", "iptables", "nft")

    def __init__(self, nft: str | None, iptables: str | None, ip6tables: str | None) -> None:
        self.nft = nft
        self.iptables = iptables
        self.ip6tables = ip6tables

    @classmethod
    def of(cls, files: dict[str, str]) -> Ruleset:
        """The ruleset among a configuration's rendered files."""
        return cls(files.get(paths.NFT_RULESET), files.get(paths.IPTABLES_RULESET), files.get(paths.IP6TABLES_RULESET))

    def backend(self) -> str | None:
        return "nft" if self.nft is not None else "iptables" if self.iptables or self.ip6tables else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ruleset) and self._texts() == other._texts()

    def __hash__(self) -> int:
        return hash(self._texts())

    def _texts(self) -> tuple[str | None, str | None, str | None]:
        return self.nft, self.iptables, self.ip6tables

    def _iptables(self) -> tuple[tuple[str | None, str], ...]:
        """Each family's restore text with its loader's name prefix (``iptables``, ``ip6tables``)."""
        return (self.iptables, "iptables"), (self.ip6tables, "ip6tables")

    def live(self) -> bool:
        """Whether the kernel has it as rendered (``flush ruleset`` by nftables.service removes ours)."""
        return self.state("nft") in (None, LOADED) and self.state("iptables") in (None, LOADED)

    def state(self, backend: str) -> str | None:
        """``loaded``, ``flushed`` (there, but rules are missing) or ``absent``; None if it has nothing for it.

        The iptables backend is loaded only when each family's file is.
        """
        if backend == "nft" and self.nft is not None:
            if not nft_loaded():
                return ABSENT
            listed = run(["nft", "-j", "list", "table", *NFT_TABLE])
            return LOADED if nft_format.loaded_as_rendered(self.nft, listed) else FLUSHED
        states = set()
        for text, tool in self._iptables() if backend == "iptables" else ():
            if text is not None:
                saved = _save(tool)
                states.add(ABSENT if not iptables_format.chains_present(saved) else
                           LOADED if iptables_format.loaded_as_rendered(text, saved) else FLUSHED)
        return next((state for state in (ABSENT, FLUSHED, LOADED) if state in states), None)

    def install(self) -> None:
        """Load this ruleset and remove the other backend's, each in one transaction per loader."""
        if self.nft is not None:
            run(["nft", "-f", "-"], self.nft)
        elif nft_loaded():
            run(["nft", "delete", "table", *NFT_TABLE])
        for text, tool in self._iptables():
            saved = _save(tool)
            if text is not None:
                run([f"{tool}-restore", "--noflush"], iptables_format.restore_input(text, saved))
            else:
                removal = iptables_format.removal_input(saved)
                if removal:
                    run([f"{tool}-restore", "--noflush"], removal)


def nft_loaded() -> bool:
    return succeeds(["nft", "list", "table", *NFT_TABLE])


def iptables_loaded() -> bool:
    return any(iptables_format.chains_present(_save(tool)) for tool in ("iptables", "ip6tables"))


def counters() -> dict[str, tuple[int, int]]:
    """Every live counter of ours, by name (:mod:`..render.counters`): ``(packets, bytes)``, from either backend
    (with iptables, the sum of both families)."""
    found: dict[str, tuple[int, int]] = {}
    if nft_loaded():
        found.update(nft_format.read_counters(run(["nft", "-j", "list", "counters", "table", *NFT_TABLE])))
    for tool in ("iptables", "ip6tables"):
        if shutil.which(f"{tool}-save") is not None:
            for name, (packets, octets) in iptables_format.read_counters(
                    run([f"{tool}-save", "-c", "-t", iptables_format.TABLE])).items():
                before = found.get(name, (0, 0))
                found[name] = (before[0] + packets, before[1] + octets)
    return found


def _save(tool: str) -> str:
    """Our table as ``iptables-save`` (or ``ip6tables-save``) lists it; empty where the tool is not installed
    (no chains of ours then)."""
    if shutil.which(f"{tool}-save") is None:
        return ""
    return run([f"{tool}-save", "-t", iptables_format.TABLE])
