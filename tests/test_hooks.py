"""hooks/: the answer migrations copier runs on update, and their wiring in copier.yml."""

import ast
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from harness.answers import COPIER_YML
from harness.commands import run
from harness.paths import ROOT

sys.path.insert(0, str(ROOT / "hooks"))
import migrate_answers

ANSWERS = """\
# Changes here will be overwritten by Copier; do not edit by hand: use `copier update --data`.
_commit: v1.0.0
_src_path: /templates/async-pg-template
db_driver: asyncpg
description: A long description that copier folded
  onto a second line
test_db_strategy: nullpool
use_pgvector: false
"""


def test_a_renamed_question_keeps_its_answer_and_place() -> None:
    migrated = migrate_answers.migrate(
        ANSWERS, renamed={"test_db_strategy": "test_isolation"}, removed=[]
    )

    assert migrated == ANSWERS.replace("test_db_strategy: nullpool", "test_isolation: nullpool")


def test_a_removed_question_loses_its_whole_block() -> None:
    migrated = migrate_answers.migrate(ANSWERS, renamed={}, removed=["description"])

    assert "description" not in migrated
    assert "onto a second line" not in migrated
    assert migrated.splitlines()[-2:] == ["test_db_strategy: nullpool", "use_pgvector: false"]


def test_questions_not_named_are_left_alone() -> None:
    assert migrate_answers.migrate(ANSWERS, renamed={"absent": "other"}, removed=["gone"]) == (
        ANSWERS
    )


def test_a_rename_onto_an_existing_answer_is_refused() -> None:
    with pytest.raises(SystemExit, match="already hold use_pgvector"):
        migrate_answers.migrate(ANSWERS, renamed={"db_driver": "use_pgvector"}, removed=[])


def test_main_rewrites_the_file_for_the_release(tmp_path) -> None:
    answers = tmp_path / ".copier-answers.yml"
    answers.write_text(ANSWERS)
    changes = tmp_path / "changes.toml"
    changes.write_text(
        '[[release]]\nversion = "2.0.0"\nrenamed = { db_driver = "driver" }\nremoved = []\n'
    )

    migrate_answers.main([str(answers), "2.0.0", str(changes)])

    assert "driver: asyncpg" in answers.read_text().splitlines()


def test_an_unknown_release_is_an_error(tmp_path) -> None:
    changes = tmp_path / "changes.toml"
    changes.write_text("release = []\n")

    with pytest.raises(SystemExit, match=r"no release '9\.9\.9'"):
        migrate_answers.main([str(tmp_path / "answers.yml"), "9.9.9", str(changes)])


def documented_migration(version: str) -> dict[str, Any]:
    """The `_migrations` entry that answer_changes.toml tells a maintainer to add, for `version`."""
    text = (ROOT / "hooks" / "answer_changes.toml").read_text()
    shown = re.search(r"^#   _migrations:\n(?:#     .*\n)+", text, re.MULTILINE)
    assert shown, "hooks/answer_changes.toml does not show the _migrations entry to add"
    entry = "\n".join(line.removeprefix("#   ") for line in shown.group(0).splitlines())
    [migration] = yaml.safe_load(entry.replace("X.Y.Z", version))["_migrations"]
    return dict(migration)


def test_copier_yml_gates_exactly_the_releases_of_the_table() -> None:
    table = tomllib.loads((ROOT / "hooks" / "answer_changes.toml").read_text())
    migrations = COPIER_YML.get("_migrations", [])

    assert [migration["version"] for migration in migrations] == [
        release["version"] for release in table["release"]
    ]
    for migration in migrations:
        assert migration == documented_migration(migration["version"])


def test_the_documented_entry_runs_the_script_before_rendering(tmp_path: Path) -> None:
    migration = documented_migration("9.9.9")
    context = {
        "_copier_python": sys.executable,
        "_copier_conf": {"src_path": ROOT, "answers_file": ".copier-answers.yml"},
    }
    command = [jinja2.Template(part).render(context) for part in migration["command"]]
    (tmp_path / ".copier-answers.yml").write_text(ANSWERS)

    refused = run(*command, cwd=tmp_path, returncode=1)

    # The script got the answers file and the release, in that order: it looked the release up.
    assert "lists no release '9.9.9'" in refused.stderr
    assert jinja2.Template(migration["when"]).render(_stage="before") == "True"
    assert jinja2.Template(migration["when"]).render(_stage="after") == "False"


def test_the_script_needs_only_the_standard_library() -> None:
    tree = ast.parse((ROOT / "hooks" / "migrate_answers.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }

    assert imported <= sys.stdlib_module_names
