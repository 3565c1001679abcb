#!/bin/bash
# The two commands for a fresh Debian 12 machine, as root (README.md, .ci/run):
#   ./dev.sh demo   installs what is needed, then shows the product at work in network namespaces
#   ./dev.sh test   installs what is needed, then runs every test (pytest; privileged e2e tests included)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

APT_PACKAGES=(
    # the product and what it drives
    python3 python3-venv python3-yaml python3-jsonschema python3-dbus-next
    nftables iptables iproute2 netplan.io systemd dbus conntrack
    # the tests: namespaces, traffic, real boots, the Debian package
    python3-pytest python3-prometheus-client curl iputils-ping debootstrap systemd-container
    python3-hypothesis   # generated configs: the differential test against netplan's generator, tests/test_fuzz.py
    dpkg-dev lintian devscripts man-db groff-base   # the package's Build-Depends come from debian/control below
    time   # bench/bench_generator.py: peak memory of a child (ru_maxrss from the bench itself starts at its size)
)

setup() {
    local missing=()
    for package in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if ((${#missing[@]})); then
        echo "dev.sh: installing ${missing[*]}" >&2
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    if ! dpkg-checkbuilddeps 2>/dev/null; then
        [ -n "$(find /var/lib/apt/lists -name '*Packages*' -print -quit)" ] || apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q ./
    fi
    # Debian's interpreter with Debian's python3-* packages: what runs on a user's host.
    if [ ! -x .venv/bin/python ]; then
        /usr/bin/python3 -m venv --system-site-packages .venv
    fi
    .venv/bin/python -m pip install -q --no-build-isolation --no-deps --disable-pip-version-check -e .
    # Linters run as tests; pinned so a new release cannot turn CI red on its own.
    .venv/bin/python -m pip install -q --disable-pip-version-check ruff==0.17.6 mypy==2.4.1 \
        types-PyYAML==6.0.12.20261113
}

case "${1:-}" in
    demo) setup; exec .venv/bin/python examples/demo.py ;;
    test) setup; shift; exec .venv/bin/python -m pytest "$@" ;;
    *) echo "usage: $0 demo|test [pytest arguments]" >&2; exit 2 ;;
esac
