"""The README's two set-up commands work as written, also on a system
Python that refuses ``pip install`` outside a virtual environment (PEP 668,
as Debian and Ubuntu ship it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import pytest

TOP = Path(__file__).resolve().parents[1]
README = TOP / "README.md"
LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "*.so",
                                  "_core.c", "__pycache__", ".mypy_cache", ".hypothesis")


def command(marker: str) -> str:
    """The command on the line after the marker's code fence, as .ci/run reads it."""
    proc = subprocess.run(
        ["awk", "/<!-- %s -->/ {getline; getline; print; exit}" % marker, str(README)],
        capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def externally_managed_python() -> Optional[str]:
    """A system python3 that has the PEP 668 marker, if there is one."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if not os.access(candidate, os.X_OK):
            continue
        stdlib = subprocess.run(
            [candidate, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
            capture_output=True, text=True).stdout.strip()
        if stdlib and os.path.exists(os.path.join(stdlib, "EXTERNALLY-MANAGED")):
            return candidate
    return None


def readme_exists() -> None:
    if not README.exists():
        pytest.skip("not run from a source tree")


def test_two_commands_each_in_a_virtual_environment() -> None:
    readme_exists()
    text = README.read_text()
    assert text.count("<!-- main-command -->") == 1 and text.count("<!-- test-command -->") == 1
    main, test = command("main-command"), command("test-command")
    for cmd in (main, test):
        steps = [step.strip() for step in cmd.split("&&")]
        assert steps[0] == "python3 -m venv .venv", cmd
        for step in steps[1:]:
            assert step.startswith(".venv/bin/"), "%r runs outside the venv in %r" % (step, cmd)
    assert main.endswith(".venv/bin/sysvkit demo")
    assert test.endswith(".venv/bin/pytest")


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_main_command_works_on_an_externally_managed_python(tmp_path: Path) -> None:
    readme_exists()
    system = externally_managed_python()
    if system is None:
        pytest.skip("no system python3 with the PEP 668 marker on this machine")
    src = tmp_path / "clone"
    shutil.copytree(TOP, src, ignore=LEFT_OUT)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(system)
    env = dict(os.environ, PATH="%s:/usr/bin:/bin" % bindir)
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    # The situation the commands are for: a plain pip install is refused.
    bare = subprocess.run(["python3", "-m", "pip", "install", "--dry-run", "."], cwd=str(src),
                          env=env, capture_output=True, text=True, timeout=120)
    if "No module named pip" not in bare.stderr:
        assert bare.returncode != 0 and "externally-managed-environment" in bare.stderr, (
            bare.stdout + bare.stderr)
    main = command("main-command")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", main], cwd=str(src), env=env,
                          capture_output=True, text=True, timeout=190)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    made_from = subprocess.run(
        [str(src / ".venv" / "bin" / "python3"), "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True, text=True, check=True).stdout.strip()
    system_prefix = subprocess.run([system, "-c", "import sys; print(sys.prefix)"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    assert made_from == system_prefix
