"""The next boot's rp_filter and the file line that sets it; tests/e2e/test_sysctl_d.py holds the same cases
against the real systemd-sysctl."""

from __future__ import annotations

from pathlib import Path

from multiuplink_networkd.host import sysctl_d

INTERFACES = ("eth1", "eth2", "vl.100")
OURS = "run/sysctl.d/50-multiuplink.conf"
OUR_FILE = "".join(f"net/ipv4/conf/{i}/rp_filter = 2\n" for i in ("eth1", "eth2", "vl.100"))

CASES: dict[str, dict[str, str]] = {
    "ours alone": {OURS: OUR_FILE},
    "a later file sets one uplink strict": {OURS: OUR_FILE, "etc/sysctl.d/99-hardening.conf":
                                            "# CIS\nnet.ipv4.conf.eth2.rp_filter = 1\n"},
    "an earlier file loses": {OURS: OUR_FILE, "etc/sysctl.d/10-strict.conf": "net.ipv4.conf.eth2.rp_filter=1\n"},
    "a later glob never beats an explicit key": {OURS: OUR_FILE, "usr/lib/sysctl.d/90-glob.conf":
                                                 "net.ipv4.conf.*.rp_filter = 1\n"},
    "a glob reaches all, default and new interfaces": {"usr/lib/sysctl.d/50-default.conf":
                                                       "net.ipv4.conf.default.rp_filter = 2\n"
                                                       "net.ipv4.conf.*.rp_filter = 1\n"
                                                       "-net.ipv4.conf.all.rp_filter\n"},
    "the last of two globs wins": {"etc/sysctl.d/20-a.conf": "net.ipv4.conf.e*.rp_filter = 2\n",
                                   "etc/sysctl.d/30-b.conf": "net/ipv4/conf/*/rp_filter = 1\n"},
    "a same-named file in /etc masks ours": {OURS: OUR_FILE, "etc/sysctl.d/50-multiuplink.conf": "; masked\n"},
    "a link to /dev/null masks a vendor file": {"usr/lib/sysctl.d/60-strict.conf": "net.ipv4.conf.all.rp_filter = 1\n",
                                                "etc/sysctl.d/60-strict.conf": "/dev/null"},
    "/run masks /usr/lib": {"usr/lib/sysctl.d/60-x.conf": "net.ipv4.conf.eth1.rp_filter = 1\n",
                            "run/sysctl.d/60-x.conf": "net.ipv4.conf.eth1.rp_filter = 0\n"},
    "a negative key drops an earlier assignment": {OURS: OUR_FILE, "etc/sysctl.d/70-neg.conf":
                                                   "-net.ipv4.conf.eth2.rp_filter\n"
                                                   "net.ipv4.conf.default.rp_filter = 1\n"},
    "dots and slashes, the '-' prefix, a re-assigned key moves last": {
        "etc/sysctl.d/40-a.conf": "net.ipv4.conf.vl/100.rp_filter = 1\n-net.ipv4.conf.eth1.rp_filter = 1\n"
                                  "net.ipv4.conf.*.rp_filter = 2\n",
        "etc/sysctl.d/41-b.conf": "net/ipv4/conf/vl.100/rp_filter = 0\nnet.ipv4.conf.eth1.rp_filter = 1\n"
                                  "net.ipv4.conf.all.rp_filter = 2\n"},
    "the same value again keeps the first file": {OURS: OUR_FILE, "etc/sysctl.d/80-same.conf":
                                                  "net.ipv4.conf.eth1.rp_filter = 2\n"},
    "not an assignment, comments, garbage": {"etc/sysctl.d/10-x.conf": "# a\n; b\nnet.ipv4.conf.eth1.rp_filter\n"
                                             "net.ipv4.conf.eth2.rp_filter = strict\n"},
}


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if text == "/dev/null":
            path.symlink_to("/dev/null")
        else:
            path.write_text(text)


def test_the_line_that_sets_the_value_is_named(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, CASES["a later file sets one uplink strict"])
    all_value, interfaces = sysctl_d.rp_filter_at_boot(str(root), ["eth1", "eth2"], {})
    assert interfaces["eth2"].source() == f"{root}/etc/sysctl.d/99-hardening.conf:2"
    assert interfaces["eth2"].key == "net.ipv4.conf.eth2.rp_filter"
    assert interfaces["eth1"].source() == f"{root}/{OURS}:1"
    assert all_value == sysctl_d.BootValue(0, None, None, None), "the kernel's default: no file sets it"


def test_an_interface_nothing_names_inherits_default(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, {"usr/lib/sysctl.d/10-d.conf": "net.ipv4.conf.default.rp_filter = 1\n"})
    _, interfaces = sysctl_d.rp_filter_at_boot(str(root), ["eth9"], {})
    assert interfaces["eth9"] == sysctl_d.BootValue(1, f"{root}/usr/lib/sysctl.d/10-d.conf", 1,
                                                    "net.ipv4.conf.default.rp_filter")


def test_the_file_about_to_be_written_replaces_the_one_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, {OURS: "net/ipv4/conf/eth1/rp_filter = 0\n"})
    _, interfaces = sysctl_d.rp_filter_at_boot(str(root), ["eth1"], {OURS: "net/ipv4/conf/eth1/rp_filter = 2\n"})
    assert interfaces["eth1"].value == 2
    _, interfaces = sysctl_d.rp_filter_at_boot(str(root), ["eth1"], {OURS: None})
    assert interfaces["eth1"].path is None, "a file about to be removed sets nothing"
