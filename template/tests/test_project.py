"""The project tree itself: what a `copier update` leaves unresolved fails the suite."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

from app.config import PROJECT_ROOT

CONFLICT_MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)
NOT_OURS = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def project_files() -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(PROJECT_ROOT):
        subdirectories[:] = [name for name in subdirectories if name not in NOT_OURS]
        for name in files:
            yield Path(directory, name)


def test_no_conflict_markers_are_left() -> None:
    marked = [
        str(path.relative_to(PROJECT_ROOT))
        for path in project_files()
        if CONFLICT_MARKER.search(path.read_text(errors="ignore"))
    ]
    assert marked == [], f"resolve the merge conflicts `copier update` left in {marked}"


def test_no_rejected_hunks_are_left() -> None:
    rejected = [str(path.relative_to(PROJECT_ROOT)) for path in project_files()]
    rejected = [name for name in rejected if name.endswith(".rej")]
    assert rejected == [], f"apply or delete the hunks `copier update` could not: {rejected}"
