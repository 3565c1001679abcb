"""``multiuplink apply``: make the running host match the stanza, or leave it as it was.

Order: ruleset (one atomic transaction), sysctls, drop-ins, then networkd over
D-Bus, checked on the live rules (networkd_sync). Every step is undone if a
later one fails. Runs are serialised by a
lock; a run that finds nothing to change touches nothing.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager

from . import __version__, loader, netplan, networkd_sync, paths, stanza, writer
from .loader import LoadError
from .networkd_sync import NetworkdDown, NetworkdFailed
from .render import render

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from .model import Settings

LOCK_FILE = paths.STATE_DIR + "/lock"


class ApplyError(Exception):
    """A step failed; the previous configuration was restored."""


@contextmanager
def _locked(root: str) -> Iterator[None]:
    path = os.path.join(root, LOCK_FILE)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path, "a", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class _Netfilter:
    """The ruleset part of a plan: what to load, and how to go back."""

    def __init__(self, files: dict[str, str], before: dict[str, str]) -> None:
        self.new_nft = files.get(paths.NFT_RULESET)
        self.new_ipt = files.get(paths.IPTABLES_RULESET)
        self.old_nft = before.get(paths.NFT_RULESET)
        self.old_ipt = before.get(paths.IPTABLES_RULESET)

    def needed(self) -> bool:
        """Changed text, or the kernel lost our rules (e.g. ``flush ruleset`` by nftables.service)."""
        if (self.new_nft, self.new_ipt) != (self.old_nft, self.old_ipt):
            return True
        if self.new_nft is not None and not loader.nft_table_present():
            return True
        return self.new_ipt is not None and not loader.iptables_chains_present()

    @staticmethod
    def _install(nft: str | None, ipt: str | None) -> None:
        if nft is not None:
            loader.load_nft(nft)
        else:
            loader.unload_nft()
        if ipt is not None:
            loader.load_iptables(ipt)
        elif loader.iptables_chains_present():
            loader.unload_iptables()

    def apply(self) -> None:
        self._install(self.new_nft, self.new_ipt)

    def undo(self) -> None:
        self._install(self.old_nft, self.old_ipt)


def _rp_filter_plan(files: dict[str, str], before: dict[str, str]) -> dict[str, int]:
    """``{interface: value}`` to set: new values, and the namespace default for uplinks that went away."""
    new = loader.parse_sysctl(files.get(paths.SYSCTL_FILE, ""))
    old = loader.parse_sysctl(before.get(paths.SYSCTL_FILE, ""))
    plan = {name: value for name, value in new.items() if loader.read_rp_filter(name) not in (None, value)}
    if set(old) - set(new):
        default = loader.default_rp_filter()
        plan.update({name: default for name in set(old) - set(new)})
    return plan


def _remember_valid_inputs(root: str, inputs: str) -> None:
    """Lets the next boot's generator skip parsing; losing it only costs that boot a parse."""
    cache = os.path.join(root, paths.GENERATOR_CACHE)
    if writer.read_text(cache) != inputs:
        try:
            writer.write_atomically(cache, inputs)
        except OSError:
            pass  # read-only /var: harmless


def _changed_links(root: str, before: dict[str, str], files: dict[str, str],
                   touched: list[str]) -> list[networkd_sync.Link]:
    """The links whose drop-in was written or removed (netplan ID → kernel name via netplan's YAML)."""
    dropins = [rel for rel in touched if rel.startswith(paths.NETWORKD_DIR + "/")]
    if not dropins:
        return []
    interfaces = netplan.read_netplan(root).interfaces
    links = []
    for rel in dropins:
        netplan_id = rel.split("/")[3][len("10-netplan-"):-len(".network.d")]
        definition = interfaces.get(netplan_id)
        name = definition.name if definition and definition.name else netplan_id
        links.append(networkd_sync.Link(name, before.get(rel), files.get(rel)))
    return links


def apply(root: str = "/", boot: bool = False) -> list[str]:
    """Apply; return what changed (empty: nothing touched).

    ``boot`` (the unit's mode): networkd is told only if it already runs; at
    boot it starts after us and reads the drop-ins itself.

    Raises ConfigErrors (nothing touched), ApplyError (rolled back) or NetworkdDown.
    """
    inputs = paths.fingerprint(root, __version__)  # taken before reading, so a concurrent edit misses the cache
    settings: Settings | None = stanza.load(root)
    files = render(settings) if settings else {}
    with _locked(root):
        if settings is not None:
            _remember_valid_inputs(root, inputs)
        before = {rel: writer.read_text(os.path.join(root, rel)) or "" for rel in writer.owned_files(root)}
        netfilter = _Netfilter(files, before)
        rp_filter = _rp_filter_plan(files, before)
        reload_netfilter = netfilter.needed()
        if not (reload_netfilter or rp_filter or files != before):
            return []
        old_rp_filter = {name: loader.read_rp_filter(name) for name in rp_filter}
        done: list[str] = []
        try:
            if reload_netfilter:
                netfilter.apply()
                done.append("netfilter")
            for name, value in rp_filter.items():
                loader.write_rp_filter(name, value)
            changes = writer.write_tree(root, files)
            done.append("files")
            links = _changed_links(root, before, files, changes.touched())
            tell_networkd = bool(links) and (not boot or networkd_sync.running())
            if tell_networkd:
                networkd_sync.pick_up(links)
        except (LoadError, OSError, NetworkdFailed) as error:
            _roll_back(root, before, files, netfilter if "netfilter" in done else None, old_rp_filter,
                       tell_networkd="files" in done and (not boot or networkd_sync.running()))
            raise ApplyError(f"{error}; the previous configuration was restored") from None
        return changes.touched() + (["netfilter"] if reload_netfilter else [])


def _roll_back(root: str, before: dict[str, str], files: dict[str, str], netfilter: _Netfilter | None,
               old_rp_filter: dict[str, int | None], tell_networkd: bool) -> None:
    """Best effort, each step on its own: one failing undo must not stop the others."""
    changes = writer.write_tree(root, before)
    if netfilter is not None:
        try:
            netfilter.undo()
        except LoadError:
            pass
    for name, value in old_rp_filter.items():
        if value is not None:
            loader.write_rp_filter(name, value)
    links = _changed_links(root, files, before, changes.touched())
    if tell_networkd and links:
        try:
            networkd_sync.pick_up(links)
        except (NetworkdDown, NetworkdFailed):
            pass
