"""A clean build of the package prints no warnings: no setuptools
deprecation, no compiler warning from the C sources.

Builds a wheel from a copy of the source tree exactly as a user's pip does
(an isolated build environment with what pyproject.toml asks for).  Slow:
about a minute, most of it the C compiler.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]
LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "*.so",
                                  "_core.c", "__pycache__", ".mypy_cache", ".hypothesis")


@pytest.mark.slow
@pytest.mark.timeout(170)
def test_clean_build_prints_no_warnings(tmp_path: Path) -> None:
    if not (TOP / "pyproject.toml").exists() or not (TOP / "csrc").is_dir():
        pytest.skip("not run from a source tree")
    src = tmp_path / "src"
    shutil.copytree(TOP, src, ignore=LEFT_OUT)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "-w", str(tmp_path / "wheels"),
         "--no-deps", "-v", "--no-cache-dir"],
        capture_output=True, text=True, timeout=160, cwd=str(tmp_path))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert list((tmp_path / "wheels").glob("sysvkit-*.whl")), log[-2000:]
    assert "SetuptoolsDeprecationWarning" not in log, log
    assert "`project.license` as a TOML table is deprecated" not in log
    compiler = [line for line in log.splitlines()
                if re.search(r"\.(c|h|pxi|pyx):\d+(:\d+)?: warning:", line)]
    assert not compiler, "\n".join(compiler)
    assert "strict-aliasing" not in log
