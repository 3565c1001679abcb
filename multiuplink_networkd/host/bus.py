"""Ask systemd-networkd to pick up changed drop-ins, or to describe links, over D-Bus.

The only module that imports dbus-next (unmaintained upstream): swapping the
D-Bus library means rewriting these few lines. Imported only by
:mod:`.networkd`, when networkd must really be asked; never at boot.
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


async def _on_bus(calls: list[Message], timeout: float) -> list[Message]:
    """Send ``calls`` to networkd, after making sure it runs (calling it would D-Bus-activate it); the replies."""
    try:
        bus = await asyncio.wait_for(MessageBus(bus_type=BusType.SYSTEM).connect(), timeout)
    except (TimeoutError, OSError) as error:
        raise NetworkdNotRunning(f"cannot reach the system D-Bus: {error}") from None
    try:
        owner = await _call(bus, Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                         interface="org.freedesktop.DBus", member="NameHasOwner",
                                         signature="s", body=[NETWORKD]))
        if not owner.body[0]:
            raise NetworkdNotRunning("systemd-networkd is not running")
        return [await asyncio.wait_for(_call(bus, message), timeout) for message in calls]
    finally:
        bus.disconnect()


def _manager(member: str, signature: str = "", body: list[object] | None = None) -> Message:
    return Message(destination=NETWORKD, path=MANAGER_PATH, interface=MANAGER, member=member,
                   signature=signature, body=body or [])


def reload(timeout: float = 10.0) -> None:
    """``Reload``: networkd re-reads .network files and reconfigures the links whose files changed."""
    asyncio.run(_on_bus([_manager("Reload")], timeout))


def reconfigure(ifindexes: list[int], timeout: float = 10.0) -> None:
    """``ReconfigureLink`` for each link: drops and re-applies its whole configuration."""
    asyncio.run(_on_bus([_manager("ReconfigureLink", "i", [index]) for index in ifindexes], timeout))


def describe_links(ifindexes: list[int], timeout: float = 10.0) -> list[str]:
    """``DescribeLink`` for each link: networkd's JSON view (states, addresses and where they come from)."""
    replies = asyncio.run(_on_bus([_manager("DescribeLink", "i", [index]) for index in ifindexes], timeout))
    return [str(reply.body[0]) for reply in replies]
