"""Have systemd-networkd pick up changed drop-ins, then check on the live rules that it did.

networkd 252 reconfigures the links whose ``.network`` files changed on
``Reload`` alone: measured with a 5 ms ping across an apply, 1-2 replies are
lost, against 7-14 when ``ReconfigureLink`` follows. So we ``Reload``, read
the policy rules back (nmstate's "verify after apply"), and call
``ReconfigureLink`` only for links that have not converged (an older
networkd, or rules a networkd restart left behind). Links without carrier
are not waited for: networkd configures them when they come up.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

from . import networkd_bus

FIRST_WAIT = 2.0
"""Seconds for networkd to act on Reload; it takes about 0.1 s here."""
SECOND_WAIT = 5.0


class NetworkdDown(Exception):
    """Nobody runs networkd: the drop-ins wait for it."""


class NetworkdFailed(Exception):
    """networkd refused, or did not install what the drop-ins say."""


def dropin_rule(text: str | None) -> tuple[int, int, int] | None:
    """``(fwmark, mask, table)`` of one of our drop-ins (our own fixed format)."""
    if not text:
        return None
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    mark, mask = values["FirewallMark"].split("/")
    return int(mark, 0), int(mask, 0), int(values["Table"])


def live_rules() -> set[tuple[int, int, int]]:
    """The fwmark rules the kernel has now (IPv4)."""
    done = subprocess.run(["ip", "-4", "-j", "rule", "show"], capture_output=True, text=True, check=True)
    rules = set()
    for rule in json.loads(done.stdout or "[]"):
        if "fwmark" in rule and str(rule.get("table", "")).isdigit():
            rules.add((int(rule["fwmark"], 0), int(rule.get("fwmask", "0xffffffff"), 0), int(rule["table"])))
    return rules


def running() -> bool:
    """Whether systemd says networkd runs; asked without D-Bus, which may not be up during boot."""
    try:
        done = subprocess.run(["systemctl", "is-active", "--quiet", "systemd-networkd.service"], check=False,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        return False
    return done.returncode == 0


def has_carrier(interface: str) -> bool:
    try:
        with open(f"/sys/class/net/{interface}/carrier", encoding="ascii") as stream:
            return stream.read().strip() == "1"
    except OSError:  # absent, or down (reading carrier of a down link fails with EINVAL)
        return False


class Link:
    """One link whose drop-in changed: the rule it must now have, and the one it must lose."""

    __slots__ = ("interface", "stale", "wanted")

    def __init__(self, interface: str, old_text: str | None, new_text: str | None) -> None:
        self.interface = interface
        self.wanted = dropin_rule(new_text)
        old = dropin_rule(old_text)
        self.stale = old if old != self.wanted else None

    def converged(self, rules: set[tuple[int, int, int]]) -> bool:
        return (self.wanted is None or self.wanted in rules) and (self.stale is None or self.stale not in rules)


def _wait(links: list[Link], seconds: float) -> list[Link]:
    """The links still not converged after waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        rules = live_rules()
        pending = [link for link in links if not link.converged(rules)]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.05)


def _call(method: str, *args: object) -> None:
    try:
        getattr(networkd_bus, method)(*args)
    except networkd_bus.NetworkdNotRunning as error:
        raise NetworkdDown(str(error)) from None
    except networkd_bus.NetworkdError as error:
        raise NetworkdFailed(str(error)) from None


def pick_up(links: list[Link]) -> None:
    """Reload; reconfigure only the links that did not converge; fail if they still do not."""
    _call("reload")
    pending = _wait([link for link in links if has_carrier(link.interface)], FIRST_WAIT)
    if not pending:
        return
    indexes = []
    for link in pending:
        try:
            indexes.append(socket.if_nametoindex(link.interface))
        except OSError:
            pass  # gone meanwhile; nothing to reconfigure
    _call("reconfigure", indexes)
    still = _wait(pending, SECOND_WAIT)
    if still:
        names = ", ".join(link.interface for link in still)
        raise NetworkdFailed(f"systemd-networkd did not install the policy rules of {names}")
