"""Rendering the template: from the working tree as it is now, or from a git reference."""

import shutil
from pathlib import Path
from typing import Any

import copier

from harness.answers import BASE_ANSWERS
from harness.paths import ROOT

TEMPLATE_FILES = ["copier.yml", "template", "hooks", "locks"]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")


def copy_working_tree(destination: Path) -> Path:
    """The template's files as they are now, outside git: copier renders them as they are,
    not the last tag and not the last commit."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in TEMPLATE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=IGNORED, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, destination / name)
    return destination


def render(
    source: Path | str, destination: Path, *, vcs_ref: str | None = None, **answers: Any
) -> Path:
    """Render `source` into `destination` with the given answers and defaults elsewhere."""
    copier.run_copy(
        str(source),
        destination,
        data={**BASE_ANSWERS, **answers},
        defaults=True,
        overwrite=True,
        unsafe=False,
        quiet=True,
        vcs_ref=vcs_ref,
    )
    return destination
