"""Habits of the repository: one version, the licence pyproject names, no build metadata or machine paths in git."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import zoomrl

REPO = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+; on 3.10 these pyproject checks skip


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_one_version_read_from_the_package():
    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "zoomrl.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", zoomrl.__version__)


def test_installed_metadata_agrees_with_the_package():
    try:
        installed = importlib.metadata.version("zoomrl")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("zoomrl is not installed (pip install -e . writes its metadata)")
    assert installed == zoomrl.__version__, "reinstall (pip install --no-deps -e .) after changing __version__"


def test_the_licence_file_is_the_one_pyproject_names():
    project = _pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the zoomrl authors" in text


def test_no_build_metadata_in_git():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "--", "*.egg-info*"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked == []


MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:work|home|Users|root|mnt)/")


def test_documents_hold_no_absolute_machine_paths():
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if MACHINE_PATH.search(line)
    ]
    assert found == [], "use a path relative to the repository:\n" + "\n".join(found)
