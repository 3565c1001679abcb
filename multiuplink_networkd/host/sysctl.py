"""The sysctls we set now (rp_filter of existing interfaces, tcp_fwmark_accept); systemd-sysctl applies our
sysctl.d file at boot."""

from __future__ import annotations

import os

from ..errors import HostError
from ..render.sysctl import rp_filter_key

PROC = "/proc/sys"


def read(key: str) -> int | None:
    """The value of ``key`` (slash form); None if there is no such key (an interface that does not exist)."""
    try:
        with open(f"{PROC}/{key}", encoding="ascii") as stream:
            return int(stream.read())
    except (OSError, ValueError):
        return None


def write(key: str, value: int) -> None:
    """Set it now if it exists; a later interface gets its rp_filter from sysctl.d through udev."""
    path = f"{PROC}/{key}"
    if not os.path.exists(path):
        return
    try:
        with open(path, "w", encoding="ascii") as stream:
            stream.write(f"{value}\n")
    except OSError as error:
        raise HostError(f"cannot set {path}: {error.strerror}") from None


def read_rp_filter(interface: str) -> int | None:
    """The interface's own value (the kernel applies the larger of it and ``all``); None if it has none."""
    return read(rp_filter_key(interface))


def default_rp_filter() -> int:
    """What an interface would have without us: the namespace's ``default`` value."""
    value = read_rp_filter("default")
    return 0 if value is None else value
