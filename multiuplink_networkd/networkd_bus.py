"""Ask systemd-networkd to pick up changed drop-ins, over D-Bus.

The only module that imports dbus-next (unmaintained upstream): swapping the
D-Bus library means rewriting these few lines. Imported only by ``apply``,
never at boot.
"""

from __future__ import annotations

import asyncio

from dbus_next import BusType, Message, MessageType
from dbus_next.aio import MessageBus

NETWORKD = "org.freedesktop.network1"
MANAGER_PATH = "/org/freedesktop/network1"
MANAGER = "org.freedesktop.network1.Manager"


class NetworkdError(Exception):
    """networkd could not be asked, or refused."""


class NetworkdNotRunning(NetworkdError):
    """Nobody owns org.freedesktop.network1; calling it would D-Bus-activate networkd behind the admin's back."""


async def _call(bus: MessageBus, message: Message) -> Message:
    reply = await bus.call(message)
    if reply is None or reply.message_type == MessageType.ERROR:
        detail = reply.body[0] if reply and reply.body else ""
        raise NetworkdError(f"{message.member} failed: {reply.error_name if reply else 'no reply'} {detail}".strip())
    return reply


async def _reload(ifindexes: list[int], timeout: float) -> None:
    try:
        bus = await asyncio.wait_for(MessageBus(bus_type=BusType.SYSTEM).connect(), timeout)
    except (OSError, asyncio.TimeoutError) as error:
        raise NetworkdNotRunning(f"cannot reach the system D-Bus: {error}") from None
    try:
        owner = await _call(bus, Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                         interface="org.freedesktop.DBus", member="NameHasOwner",
                                         signature="s", body=[NETWORKD]))
        if not owner.body[0]:
            raise NetworkdNotRunning("systemd-networkd is not running")
        await asyncio.wait_for(_call(bus, Message(destination=NETWORKD, path=MANAGER_PATH, interface=MANAGER,
                                                  member="Reload")), timeout)
        for ifindex in ifindexes:
            await asyncio.wait_for(_call(bus, Message(destination=NETWORKD, path=MANAGER_PATH, interface=MANAGER,
                                                      member="ReconfigureLink", signature="i", body=[ifindex])),
                                   timeout)
    finally:
        bus.disconnect()


def reload(ifindexes: list[int], timeout: float = 10.0) -> None:
    """``Reload`` (re-read .network files), then ``ReconfigureLink`` for each link whose drop-in changed."""
    asyncio.run(_reload(ifindexes, timeout))
