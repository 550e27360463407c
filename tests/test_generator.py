"""The resource generator of the generated project (`python -m app new resource`): in every
combination, resources using every field type come out lint-, format- and type-clean, and the
project's suite passes with their tests; bad input is refused with a clear message and writes
nothing; `--dry-run` writes nothing; a second run refuses rather than overwrites."""

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.answers import Combination, combinations
from harness.commands import ProjectRunner, run
from harness.environments import project_environment, project_python

COMBINATIONS = list(combinations())
DEFAULT = next(c for c in COMBINATIONS if c.id == "asyncpg-class-novector-rollback")
RenderedProject = Callable[[Combination], Path]
SUITE_RESULT = re.compile(r"^(\d+) passed in [\d.]+s", re.MULTILINE)
COLLECTED = re.compile(r"^(\d+) tests? collected", re.MULTILINE)

# One field of each type, and each modifier, in one resource.
EVERY_TYPE = [
    "label:str(80):unique",
    "code:str(1)",
    "summary:text?",
    "quantity:int=0:index",
    "serial:bigint?",
    "active:bool=true",
    "weight:float?",
    "price:decimal(10,3)",
    "ratio:decimal(2,2)=0.5",
    "made_on:date",
    "made_at:datetime?:index",
    "token:uuid:unique",
    "attributes:json",
    "extra:json?",
    "kind:enum(small|large|huge)=small",
    "shade:enum(red|blue)?",
    "maker:fk(users, cascade)",
    "reviewer_id:fk(users)?",
]
VECTOR_FIELD = "embedding:vector(3)"
# A second resource, with integer ids, referencing the first (UUID ids) with each on delete and
# users, unique together with a foreign key; and tables the generator did not make: the example
# posts (read as PostRead, so nested in the detail) and a team's own table with no schema (a key
# column only).
SECOND = ["gadget_part", "gadget:fk(gadgets, cascade)", "spare_for:fk(gadgets, restrict)?"]
SECOND += ["backup_for:fk(gadgets, set null)?", "supplier:fk(users)?", "name:str(50)"]
SECOND += ["post:fk(posts, cascade)", "tag:fk(tags)?"]
SECOND += ["status:enum(ok|broken)", "--unique", "gadget,name"]
TAG_MODEL = """from sqlalchemy import BigInteger, Identity, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    word: Mapped[str] = mapped_column(String(30), unique=True)
    weight: Mapped[float] = mapped_column(Numeric(4, 2, asdecimal=False))
"""
TAG_MIGRATION = """\"\"\"a team's own table\"\"\"

import sqlalchemy as sa
from alembic import op

revision = "7a9e0000ta95"
down_revision = "{head}"


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("word", sa.String(length=30), nullable=False),
        sa.Column("weight", sa.Numeric(4, 2), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("word", name=op.f("uq_tags_word")),
    )


def downgrade() -> None:
    op.drop_table("tags")
"""


def add_a_hand_written_table(project: Path, head: str) -> None:
    """A model of the team's own, registered, with its migration: no schema, router or tests."""
    (project / "app" / "models" / "tag.py").write_text(TAG_MODEL)
    with (project / "app" / "models" / "resources.py").open("a") as registry:
        registry.write("\nfrom app.models.tag import Tag as Tag\n")
    migration = project / "migrations" / "versions" / "0100_tags.py"
    migration.write_text(TAG_MIGRATION.format(head=head))


def new_resource(run_in_project: ProjectRunner, project: Path, *arguments: str, **kw: int) -> str:
    return run_in_project(project, "app", "new", "resource", *arguments, **kw)


def project_state(project: Path) -> dict[str, int]:
    """Every file of the project with its modification time (bytecode caches aside)."""
    return {
        str(path.relative_to(project)): path.stat().st_mtime_ns
        for path in project.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and ".mypy_cache" not in path.parts
    }


@pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.id)
def test_generated_resources_are_clean_and_their_tests_pass(
    combination: Combination,
    rendered: RenderedProject,
    run_in_project: ProjectRunner,
    tmp_path: Path,
) -> None:
    project = shutil.copytree(rendered(combination), tmp_path / "project")
    every_type = [*EVERY_TYPE, VECTOR_FIELD] if combination.use_pgvector else EVERY_TYPE
    add_a_hand_written_table(project, head="0002" if combination.use_pgvector else "0001")

    written = new_resource(
        run_in_project, project, "gadget", *every_type, "--unique", "made_on,kind", "--id", "uuid"
    )
    new_resource(run_in_project, project, *SECOND)

    assert "wrote migrations/versions/" in written
    run_in_project(project, "ruff", "check", "--no-cache", ".")
    run_in_project(project, "ruff", "format", "--no-cache", "--check", ".")
    assert run_in_project(project, "mypy", "--strict", ".").startswith("Success: no issues found")
    generated_tests = run_in_project(
        project,
        "pytest",
        "--collect-only",
        "-q",
        "tests/api/test_gadgets.py",
        "tests/api/test_gadget_parts.py",
    )
    collected = COLLECTED.search(generated_tests)
    assert collected, generated_tests
    output = run_in_project(project, "pytest", "-q")
    summary = SUITE_RESULT.search(output)
    assert summary, output
    assert int(summary.group(1)) >= 50 + int(collected.group(1))
    assert "warning" not in output.lower()
    assert "skipped" not in output


@pytest.fixture(scope="module")
def default_project(rendered: RenderedProject, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default combination, shared by the tests that must leave it as it is."""
    return shutil.copytree(rendered(DEFAULT), tmp_path_factory.mktemp("generator") / "project")


BAD_INPUT = {
    "not-snake-case": (["Order", "a:int"], "must be snake_case"),
    "python-keyword": (["class", "a:int"], "is a Python keyword"),
    "existing-resource": (["user", "a:int"], "'users' already exists"),
    "generated-code-name": (["session", "a:int"], "a name the generated code already uses"),
    "no-fields": (["item"], "the following arguments are required: fields"),
    "unreadable-field": (["item", "price"], "cannot read the field 'price'"),
    "unknown-type": (["item", "price:money"], "unknown type 'money'"),
    "reserved-sql-word": (["item", "select:int"], "is a reserved SQL word"),
    "reserved-column": (["item", "id:int"], "is reserved"),
    "shadowing-field": (["item", "str:int"], "would shadow a name"),
    "missing-arguments": (["item", "title:str"], "str needs its arguments, e.g. str(200)"),
    "unexpected-arguments": (["item", "count:int(3)"], "int takes no arguments"),
    "zero-length": (["item", "title:str(0)"], "the length must be a whole number from 1"),
    "scale-above-precision": (["item", "total:decimal(2,3)"], "scale must be from 0 to the"),
    "enum-twice": (["item", "state:enum(on|on)"], "lists a value twice"),
    "enum-bad-value": (["item", "state:enum(On|off)"], "enum value 'On' must be"),
    "unknown-table": (["item", "owner:fk(owners)"], "no table 'owners' to reference"),
    "vector-without-pgvector": (["item", "embedding:vector(3)"], "needs pgvector"),
    "bad-int-default": (["item", "count:int=many"], "'many' is not a valid int default"),
    "bad-bool-default": (["item", "done:bool=yes"], "a bool default is true or false"),
    "default-on-date": (["item", "due:date=2026-01-01"], "a default is supported for"),
    "decimal-default-too-big": (["item", "total:decimal(3,2)=10"], "does not fit decimal(3,2)"),
    "index-on-json": (["item", "data_blob:json:index"], "need an index chosen by hand"),
    "unique-and-index": (["item", "code:int:unique:index"], "unique already indexes"),
    "unique-bool": (["item", "done:bool:unique"], "holds one row per value"),
    "unknown-modifier": (["item", "code:int:primary"], "unknown modifier 'primary'"),
    "name-twice": (["item", "code:int", "code:text"], "the name 'code' is used twice"),
    "unique-one-field": (["item", "code:int", "--unique", "code"], "two or more different"),
    "unique-unknown-field": (["item", "code:int", "--unique", "code,size"], "'size' is not one"),
    "unknown-on-delete": (["item", "owner:fk(users, nothing)"], "on delete is one of cascade"),
    "set-null-required": (["item", "owner:fk(users, set null)"], "set null needs an optional"),
    "timestamp-column": (["item", "updated_at:datetime"], "is reserved"),
    "unknown-id-type": (["item", "code:int", "--id", "text"], "argument --id: invalid choice"),
}


# Runs every case in one process of the project's Python: each would otherwise pay the
# start-up and imports of a process of its own.
BAD_INPUT_DRIVER = """
import contextlib, io, json, sys
from scaffold.cli import main
results = {}
for case, arguments in json.loads(sys.argv[1]).items():
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            status = main(["resource", *arguments])
        except SystemExit as exit:
            status = exit.code
    results[case] = [status, output.getvalue()]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def bad_input_results(
    default_project: Path,
) -> tuple[dict[str, list[Any]], bool]:
    """Each case's exit status and output, and whether the project was left untouched."""
    before = project_state(default_project)
    cases = json.dumps({case: arguments for case, (arguments, _) in BAD_INPUT.items()})
    python = project_python(default_project)
    env = project_environment(python)
    result = run(python, "-c", BAD_INPUT_DRIVER, cases, cwd=default_project, env=env)
    return json.loads(result.stdout), project_state(default_project) == before


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_refused_with_a_clear_message_and_writes_nothing(
    bad_input_results: tuple[dict[str, list[Any]], bool], case: str
) -> None:
    results, untouched = bad_input_results
    status, output = results[case]

    assert status == 2
    assert BAD_INPUT[case][1] in output
    assert untouched


def test_dry_run_prints_the_files_and_writes_nothing(
    default_project: Path, run_in_project: ProjectRunner
) -> None:
    before = project_state(default_project)

    output = new_resource(
        run_in_project, default_project, "invoice", "total:decimal(8,2)", "--dry-run"
    )

    assert "--- app/models/invoice.py\n" in output
    assert "total: Mapped[Decimal] = mapped_column(Numeric(8, 2))" in output
    assert "--- tests/api/test_invoices.py\n" in output
    assert "router.include_router(invoices.router)" in output
    assert '@router.patch("/{invoice_id}"' in output
    assert "updated_at: Mapped[datetime]" in output
    assert "dry run: nothing was written" in output
    assert project_state(default_project) == before


# What a generated field is, by the shared types of app/schemas/fields.py, and the id columns.
SHARED_TYPES = {
    "str": ("title:str(80)", "title: Annotated[Text, StringConstraints(max_length=80)]"),
    "text": ("note:text", "note: Text"),
    "datetime": ("due_at:datetime", "due_at: Instant"),
    "fk": ("owner:fk(users)", "owner_id: Id"),
    "fk-column": (
        "owner:fk(users)",
        'owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)',
    ),
    "fk-migration": ("owner:fk(users)", 'sa.Column("owner_id", sa.BigInteger(), nullable=False)'),
    "id": (
        "note:text",
        "id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)",
    ),
    "id-migration": (
        "note:text",
        'sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)',
    ),
}


@pytest.mark.parametrize("case", SHARED_TYPES)
def test_generated_fields_use_the_shared_types_and_bigint_identity_ids(
    default_project: Path, run_in_project: ProjectRunner, case: str
) -> None:
    field, written = SHARED_TYPES[case]

    output = new_resource(run_in_project, default_project, "invoice", field, "--dry-run")

    assert written in output


def test_a_second_run_refuses_rather_than_overwrites(
    rendered: RenderedProject, run_in_project: ProjectRunner, tmp_path: Path
) -> None:
    project = shutil.copytree(rendered(DEFAULT), tmp_path / "project")
    new_resource(run_in_project, project, "invoice", "total:decimal(8,2)")
    model = project / "app" / "models" / "invoice.py"
    model.write_text(model.read_text() + "# the team's edit\n")
    before = project_state(project)

    output = new_resource(run_in_project, project, "invoice", "total:int", returncode=2)

    assert "'invoices' already exists: 'invoice' is already a resource" in output
    assert "nothing was written" in output
    assert project_state(project) == before
    assert model.read_text().endswith("# the team's edit\n")


def test_the_image_leaves_the_generator_out_and_says_so(
    rendered: RenderedProject, run_in_project: ProjectRunner, tmp_path: Path
) -> None:
    project = shutil.copytree(rendered(DEFAULT), tmp_path / "project")
    assert "scaffold" in (project / ".dockerignore").read_text().split()
    shutil.rmtree(project / "scaffold")

    output = new_resource(run_in_project, project, "invoice", "total:int", returncode=2)

    assert "the resource generator (scaffold/) is not here" in output


def project_contents(project: Path) -> dict[str, bytes]:
    """Every file of the project with its bytes (caches and the development server's data
    aside)."""
    ignored = {"__pycache__", ".mypy_cache", ".ruff_cache", ".devdb", ".venv"}
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in project.rglob("*")
        if path.is_file() and not ignored & set(path.relative_to(project).parts)
    }


def destroy_resource(
    run_in_project: ProjectRunner, project: Path, *arguments: str, **kw: int
) -> str:
    return run_in_project(project, "app", "destroy", "resource", *arguments, **kw)


def test_destroy_after_new_leaves_the_project_as_it_was(
    rendered: RenderedProject, run_in_project: ProjectRunner, tmp_path: Path
) -> None:
    project = shutil.copytree(rendered(DEFAULT), tmp_path / "project")
    before = project_contents(project)
    new_resource(run_in_project, project, "gadget", "label:str(80):unique", "--id", "uuid")
    new_resource(run_in_project, project, "gadget_part", "gadget:fk(gadgets, cascade)", "n:int")
    new_resource(run_in_project, project, "widget", "name:text")

    referred = destroy_resource(run_in_project, project, "gadget", returncode=2)
    followed = destroy_resource(run_in_project, project, "gadget_part", returncode=2)
    dry_run = destroy_resource(run_in_project, project, "widget", "--dry-run")
    unchanged = project_contents(project)
    for name in ("widget", "gadget_part", "gadget"):
        destroy_resource(run_in_project, project, name)

    assert "gadget_parts refer(s) to gadgets: destroy or change those first" in referred
    assert "has later revisions" in followed
    assert "would remove app/models/widget.py" in dry_run
    assert "would edit app/api/resources.py" in dry_run
    assert project_contents(project) == before
    assert before != unchanged  # the refusals and the dry run removed nothing
    assert {"app/models/gadget.py", "app/models/widget.py"} <= set(unchanged)


def test_destroy_refuses_a_resource_whose_migration_is_applied(
    rendered: RenderedProject, run_in_project: ProjectRunner, tmp_path: Path
) -> None:
    project = shutil.copytree(rendered(DEFAULT), tmp_path / "project")
    new_resource(run_in_project, project, "widget", "name:text")
    run_in_project(project, "alembic", "upgrade", "head")

    applied = destroy_resource(run_in_project, project, "widget", returncode=2)
    run_in_project(project, "alembic", "downgrade", "-1")
    destroyed = destroy_resource(run_in_project, project, "widget")

    assert "(create widgets) is applied to the configured database: downgrade it first" in applied
    assert "nothing was removed" in applied
    assert "removed app/models/widget.py" in destroyed
    assert not (project / "app" / "models" / "widget.py").exists()
