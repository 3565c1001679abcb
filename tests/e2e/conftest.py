"""Shared fixtures of the privileged end-to-end tests; every test in this folder is marked ``e2e``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.debian_build import BUILD_SECONDS, build_deb, missing_build_tools

from . import bare_host, netns
from .product import Host, require_networkd


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def need_netns() -> None:
    reason = netns.skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def namespace(need_netns: None) -> Iterator[str]:
    """An empty network namespace of the test's own."""
    name = netns.unique_prefix()
    netns.add(name)
    yield name
    netns.delete(name)


@pytest.fixture
def need_networkd() -> None:
    require_networkd()


@pytest.fixture
def host(tmp_path: Path, need_networkd: None) -> Iterator[Host]:
    """The BCP38 topology with a real networkd configured by netplan from the example; nothing of ours yet."""
    with Host(tmp_path / "root") as running:
        yield running


@pytest.fixture
def applied(host: Host) -> Host:
    """``host`` after ``multiuplink apply``, both ISPs answering."""
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    assert host.reachable() == {"isp1": True, "isp2": True}
    return host


@pytest.fixture
def links(namespace: str) -> str:
    """``namespace`` with the three uplink links of bare_host.py."""
    bare_host.add_links(namespace)
    return namespace


@pytest.fixture
def loaded(need_netns: None) -> Iterator[Callable[[dict[str, str]], bare_host.Kernel]]:
    """What the real loaders make of a file set in a clean namespace: the kernel state an apply must leave."""
    name = netns.unique_prefix()
    netns.add(name)
    bare_host.add_links(name)
    yield lambda files: bare_host.load(name, files)
    netns.delete(name)


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Debian package of this tree, built once per session."""
    reason = missing_build_tools()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    built = build_deb(tmp_path_factory.mktemp("deb"))
    BUILD_SECONDS[built.name] = time.monotonic() - started  # ~0 when another module built it first
    return built
