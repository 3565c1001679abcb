"""A plain ``pip install`` gives a working ``multiuplink``: the schema travels inside the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "two-isps"


def test_wheel_in_a_fresh_venv_runs_every_command(tmp_path: Path) -> None:
    # A user's plain shell: no pip configuration, venv or Debian build variables (DEB_PYTHON_INSTALL_LAYOUT) leak in.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info into the tree
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(source)], check=True, env=env)
    wheel = next((tmp_path / "dist").glob("multiuplink_networkd-*.whl"))
    assert "multiuplink_networkd/multiuplink.schema.json" in zipfile.ZipFile(wheel).namelist()
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True, env=env)
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--disable-pip-version-check", str(wheel)], check=True, env=env)
    root = tmp_path / "root"
    shutil.copytree(EXAMPLE, root)
    outputs = {}
    for command in ("validate", "generate"):
        done = subprocess.run([str(venv / "bin/multiuplink"), command, "--root-dir", str(root)], cwd=tmp_path,
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        outputs[command] = done.stdout
    assert "valid: 2 uplinks" in outputs["validate"]
    assert "wrote run/multiuplink/ruleset.nft" in outputs["generate"]
