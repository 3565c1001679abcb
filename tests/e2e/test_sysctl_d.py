"""The next boot's rp_filter, as status predicts it, is what the real systemd-sysctl sets.

Each case writes sysctl.d files into a scratch root, asks
:func:`sysctl_d.rp_filter_at_boot`, then boots the same files for real in a
network namespace of its own, with the sysctl.d directories replaced by
tmpfs mounts in a private mount namespace: the kernel's defaults (0), one
run of systemd-sysctl as systemd-sysctl.service does it, the interfaces
appearing, and one run per interface as udev does it (``--prefix``, here
limited to net/ipv4/conf, which is per network namespace). Nothing of the
host's sysctls or files is touched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from multiuplink_networkd.host import sysctl_d
from tests.test_sysctl_d import CASES, INTERFACES, write

from . import netns

SYSTEMD_SYSCTL = "/lib/systemd/systemd-sysctl"


_BOOT = """\
set -e
mount -t tmpfs mu-etc /etc/sysctl.d
mount -t tmpfs mu-usr /usr/lib/sysctl.d
mount -t tmpfs mu-local /usr/local/lib
mount -t tmpfs mu-run /run
mkdir /run/sysctl.d /usr/local/lib/sysctl.d
for d in etc/sysctl.d run/sysctl.d usr/local/lib/sysctl.d usr/lib/sysctl.d; do
    [ ! -d "$1/$d" ] || cp -a "$1/$d/." "/$d/"
done
sysctl -q -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
sysctl_d=$2
shift 2
"$sysctl_d" --prefix=/net/ipv4/conf || true  # it fails for the keys of interfaces that do not exist yet
for i in "$@"; do
    ip link add "$i" type veth peer name "p-$i"
    "$sysctl_d" --prefix="/net/ipv4/conf/$i" || true
done
for k in all "$@"; do echo "$k $(cat "/proc/sys/net/ipv4/conf/$k/rp_filter")"; done
"""


def _real_boot(namespace: str, root: Path) -> dict[str, int]:
    done = netns.run(namespace, "unshare", "-m", "--propagation", "private", "sh", "-c", _BOOT, "sh", str(root),
                     SYSTEMD_SYSCTL, *INTERFACES)
    return {key: int(value) for key, value in (line.split() for line in done.stdout.splitlines())}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_prediction_equals_what_systemd_sysctl_sets(case: str, namespace: str, tmp_path: Path) -> None:
    if not os.access(SYSTEMD_SYSCTL, os.X_OK) or not shutil.which("unshare"):
        pytest.skip(f"needs {SYSTEMD_SYSCTL} (package systemd) and unshare (util-linux)")
    root = tmp_path / "root"
    write(root, CASES[case])
    all_value, interfaces = sysctl_d.rp_filter_at_boot(str(root), list(INTERFACES), {})
    predicted = {"all": all_value.value, **{i: v.value for i, v in interfaces.items()}}
    assert predicted == _real_boot(namespace, root)
