"""Reverse-path filtering of existing interfaces, set now; systemd-sysctl applies our sysctl.d file at boot."""

from __future__ import annotations

import os

from ..errors import HostError

CONF = "/proc/sys/net/ipv4/conf"


def read_rp_filter(interface: str) -> int | None:
    """The interface's own value (the kernel applies the larger of it and ``all``); None if it has none."""
    try:
        with open(f"{CONF}/{interface}/rp_filter", encoding="ascii") as stream:
            return int(stream.read())
    except (OSError, ValueError):
        return None


def write_rp_filter(interface: str, value: int) -> None:
    """Set it now if the interface exists; a later interface gets it from sysctl.d through udev."""
    path = f"{CONF}/{interface}/rp_filter"
    if not os.path.exists(path):
        return
    try:
        with open(path, "w", encoding="ascii") as stream:
            stream.write(f"{value}\n")
    except OSError as error:
        raise HostError(f"cannot set {path}: {error.strerror}") from None


def default_rp_filter() -> int:
    """What an interface would have without us: the namespace's ``default`` value."""
    value = read_rp_filter("default")
    return 0 if value is None else value
