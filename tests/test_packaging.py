"""Packaging: the package mapping, and the stdlib ``operator`` never shadowed.

``operator/`` (the package ``streamjob.operator``) must have no top-level ``__init__.py``, or it
shadows the standard library's ``operator`` whenever the repo root is on ``sys.path``.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_of_worker_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        "streamjob"
        + (
            "." + ".".join(p.parent.relative_to(ROOT / "worker").parts)
            if p.parent != ROOT / "worker"
            else ""
        )
        for p in (ROOT / "worker").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages"


def test_operator_folder_has_no_top_level_init() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()


def test_stdlib_operator_still_wins_from_the_repo_root() -> None:
    code = "import operator, collections; assert hasattr(operator, 'itemgetter'); print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_subpackage_of_operator_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        "streamjob.operator." + ".".join(p.parent.relative_to(ROOT / "operator").parts)
        for p in (ROOT / "operator").rglob("__init__.py")
    }
    assert {"streamjob.operator", *found} - listed == set(), (
        "add these to [tool.setuptools] packages"
    )


def test_operator_and_stdlib_operator_import_side_by_side_from_the_repo_root() -> None:
    code = (
        "import operator, streamjob.operator.core.plan, streamjob.operator.handlers; "
        "assert hasattr(operator, 'itemgetter'); print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
