"""Regenerate the uv.lock files a rendered project starts with: `python -m tools.lock [--upgrade]`.

A project's lock depends on the answers that change what its pyproject.toml resolves to:
`python_version`, `db_driver`, `use_pgvector` and `opentelemetry`. locks/ keeps one lock per
combination of those, with the project's name as `{{ project_slug }}` (the rest in raw blocks);
template/uv.lock.jinja includes the right one, so `uv sync --locked` works from the first commit
without copier tasks (no --trust) and without the network at copy time.
Run this after any change to template/pyproject.toml.jinja (tests/test_lock.py fails until you
do). Without --upgrade, versions already locked are kept where they still fit.

uv needs an interpreter of each Python version (it runs none of the project's code): one on this
machine (PATH, pyenv), else uv runs inside the version's base image, python:X.Y-slim (3.14 and
3.15 here: `../shared/tools/docker/build-python-standins.sh` builds stand-ins where no registry
answers).
"""

import argparse
import itertools
import tempfile
from pathlib import Path

from uv import find_uv_bin

from harness.answers import choices
from harness.commands import run
from harness.environments import interpreter
from harness.paths import ROOT
from harness.pythons import uv_in_image
from harness.render import copy_working_tree, render

LOCKS = ROOT / "locks"
LOCKED_ANSWERS = ["python_version", "db_driver", "use_pgvector", "opentelemetry"]
# The slug the locks are made with, replaced by the project's own when rendered.
SLUG = "orders-service"
ROOT_PACKAGE = '[[package]]\nname = "{}"\n'


def lock_name(
    *, python_version: str, db_driver: str, use_pgvector: bool, opentelemetry: bool
) -> str:
    """The file in locks/ for these answers (template/uv.lock.jinja builds the same name)."""
    vector = "pgvector" if use_pgvector else "novector"
    return f"py{python_version}-{db_driver}-{vector}{'-otel' if opentelemetry else ''}.lock"


def locked_combinations() -> list[dict[str, object]]:
    values = [choices(answer) for answer in LOCKED_ANSWERS]
    return [dict(zip(LOCKED_ANSWERS, combo, strict=True)) for combo in itertools.product(*values)]


def templatize(lock: str) -> str:
    """The lock with the project's name as a Jinja variable; the rest in raw blocks, which
    Jinja copies without parsing (a lock is some 300 KB: that halves the render's cost)."""
    if "{% endraw %}" in lock:
        raise SystemExit("the lock contains {% endraw %}: it cannot be kept raw")
    root = ROOT_PACKAGE.format(SLUG)
    if lock.count(root) != 1:
        raise SystemExit(f"expected one root package {SLUG!r} in the lock")
    before, after = lock.split(root)
    named = ROOT_PACKAGE.format("{% endraw %}{{ project_slug }}{% raw %}")
    return "{% raw %}" + before + named + after + "{% endraw %}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="lock the newest versions")
    versions = choices("python_version")
    parser.add_argument(
        "--python", nargs="+", choices=versions, default=versions, help="only these versions"
    )
    arguments = parser.parse_args()
    LOCKS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        source = copy_working_tree(Path(scratch) / "template")
        for answers in locked_combinations():
            if answers["python_version"] not in arguments.python:
                continue
            name = lock_name(**answers)
            project = render(source, Path(scratch) / name, project_slug=SLUG, **answers)
            rendered_lock = project / "uv.lock"
            if not rendered_lock.read_text().strip():
                rendered_lock.unlink()  # a combination without a lock yet
            upgrade = ["--upgrade"] if arguments.upgrade else []
            version = str(answers["python_version"])
            if python := interpreter(version):
                run(find_uv_bin(), "lock", "--python", python, *upgrade, cwd=project)
            else:
                run(*uv_in_image(version, project, "lock", *upgrade), cwd=project)
            (LOCKS / name).write_text(templatize(rendered_lock.read_text()))
            print(f"locks/{name}")


if __name__ == "__main__":
    main()
