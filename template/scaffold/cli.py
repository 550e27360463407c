"""`python -m app new resource NAME FIELD... [--unique a,b] [--plural P] [--dry-run]`.

Everything is checked and rendered in memory first: bad input writes nothing (exit status 2),
and a resource whose files already exist is refused rather than overwritten."""

import argparse
import builtins
import importlib
import importlib.util
import re
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import rev_id
from pydantic import BaseModel
from sqlalchemy import Enum, Table, Uuid

from app.config import PROJECT_ROOT
from app.db.base import Base
from scaffold.render import Reference, render_files
from scaffold.spec import Resource, SpecError, parse_resource

USAGE_EXAMPLE = (
    "python -m app new resource order 'customer:str(200):index' 'total:decimal(12,2)' "
    "paid:bool=false placed_at:datetime 'owner:fk(users)' 'note:text?' --unique customer,placed_at"
)
# Names the class bodies of the generated model and schemas use after the fields (a field
# named so would shadow them), and names the generated functions use for their own variables
# and imports (a resource named so would shadow them).
CLASS_BODY_NAMES = frozenset(
    {"date", "datetime", "func", "mapped_column", "relationship", "str", "int", "float", "bool"}
    | {"list", "dict", "bytes", "object"}
)
FUNCTION_NAMES = frozenset(
    {"session", "data", "result", "router", "status", "response", "found", "updated", "field"}
    | {"value", "app", "resources", "tests", "date", "datetime", "select", "sent", "stored"}
    | {"ids", "changes"}
)
FIRST_PARTY = "lint.isort.known-first-party = ['app', 'scaffold', 'tests']"
API_REGISTRY = Path("app/api/resources.py")
MODEL_REGISTRY = Path("app/models/resources.py")


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m app new resource",
        description="Write a model, schemas, service, router, migration and tests for a resource.",
        epilog=f"example: {USAGE_EXAMPLE}\nSee the README's 'Adding a resource' for every type.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("name", help="singular, snake_case: order, line_item")
    command.add_argument("fields", nargs="+", help="name:type[(args)][?][=default][:unique|:index]")
    command.add_argument("--unique", help="fields unique together, comma-separated: a,b")
    command.add_argument("--plural", help="the table's name when adding 's' is wrong")
    command.add_argument(
        "--id",
        choices=["int", "uuid"],
        default="int",
        help="the primary key: a bigint identity (default) or a time-ordered UUIDv7",
    )
    command.add_argument("--dry-run", action="store_true", help="print the files, write nothing")
    return command


def tables() -> dict[str, type]:
    """Every mapped table, by name, with its model class."""
    import app.models  # noqa: F401  (registers every model on Base)

    return {
        mapper.local_table.name: mapper.class_
        for mapper in Base.registry.mappers
        if isinstance(mapper.local_table, Table)
    }


def check_names(resource: Resource) -> None:
    taken_by_functions = FUNCTION_NAMES | set(dir(builtins))
    for name in (resource.name, resource.plural):
        if name in taken_by_functions:
            raise SpecError(f"{name!r} is a name the generated code already uses: choose another")
    model_attributes = {name for name in dir(Base) if not name.startswith("__")}
    schema_attributes = {name for name in dir(BaseModel) if not name.startswith("__")}
    taken_in_classes = CLASS_BODY_NAMES | model_attributes | schema_attributes
    for spec in resource.fields:
        for name in {spec.name, spec.column, spec.relationship}:
            if name in taken_in_classes or name.startswith("model_"):
                raise SpecError(
                    f"field {spec.name!r}: {name!r} would shadow a name the generated "
                    "model or schema uses; choose another"
                )
    enum_types = {
        column.type.name
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, Enum)
    }
    for spec in resource.fields:
        type_name = f"{resource.name}_{spec.name}"
        if spec.type == "enum" and type_name in resource.existing_tables | enum_types:
            raise SpecError(f"field {spec.name!r}: a table or enum type {type_name!r} exists")


def references(resource: Resource, known: dict[str, type]) -> dict[str, Reference]:
    """What each foreign key refers to: any table of the project's metadata keyed by `id`,
    nested in the resource's detail when its model has a `<Class>Read` schema."""
    found = {}
    for spec in resource.fields:
        if spec.target is None:
            continue
        primary_key = Base.metadata.tables[spec.target].primary_key.columns
        if [column.name for column in primary_key] != ["id"]:
            raise SpecError(f"field {spec.name!r}: {spec.target} has no single `id` primary key")
        key_type = "uuid" if isinstance(primary_key[0].type, Uuid) else "int"
        model = known.get(spec.target)
        if model is not None and has_read_schema(model):
            found[spec.name] = Reference(key_type, model.__name__, model.__module__)
        else:
            found[spec.name] = Reference(key_type)
    return found


def has_read_schema(model: type) -> bool:
    """Whether app.schemas.<module> has `<Class>Read` for the model of app.models.<module>."""
    module = model.__module__.replace("app.models.", "app.schemas.", 1)
    if importlib.util.find_spec(module) is None:
        return False
    return hasattr(importlib.import_module(module), f"{model.__name__}Read")


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def migration_head(root: Path) -> str | None:
    heads = ScriptDirectory.from_config(Config(root / "alembic.ini")).get_heads()
    if len(heads) > 1:
        raise SpecError(
            f"the migrations have {len(heads)} heads: run `uv run alembic merge heads -m merge` "
            "first"
        )
    return heads[0] if heads else None


def formatted(path: Path, source: str, root: Path) -> str:
    """The project's own ruff sorts the imports, drops those a resource does not use (the
    templates import what any resource may need) and wraps long lines, as on a save."""
    ruff = [sys.executable, "-m", "ruff"]
    stdin = ["--stdin-filename", str(path), "-"]
    rules = "I" if path in (API_REGISTRY, MODEL_REGISTRY) else "I,F401"
    steps = [
        # The new modules do not exist yet: say which imports are the project's own.
        ["check", "--fix-only", "--select", rules, "--config", FIRST_PARTY, *stdin],
        ["format", *stdin],
    ]
    for step in steps:
        result = subprocess.run(  # noqa: S603  (our own interpreter, fixed arguments)
            [*ruff, *step], input=source, capture_output=True, text=True, cwd=root, check=False
        )
        if result.returncode != 0:
            problem = (result.stderr or result.stdout).strip()
            raise SpecError(f"ruff could not format {path}: {problem}")
        source = result.stdout
    return source


def registry_with(source: str, import_line: str, tail_line: str | None) -> str:
    """The registry module with one more import (and line at the end)."""
    if import_line in source:
        return source
    imports = list(re.finditer(r"^(from|import) .*$", source, re.MULTILINE))
    if imports:
        at = imports[-1].end()
        source = source[:at] + "\n" + import_line + source[at:]
    else:  # after the module's docstring
        source = source.rstrip("\n") + "\n\n" + import_line + "\n"
    if tail_line is not None:
        source = source.rstrip("\n") + "\n" + tail_line + "\n"
    return source


def planned_files(resource: Resource, root: Path, known: dict[str, type]) -> dict[Path, str]:
    found = references(resource, known)
    revision = rev_id()
    now = datetime.now(UTC)
    migration_name = f"{now:%Y%m%d_%H%M}_{revision}_create_{resource.plural}.py"
    rendered = render_files(
        resource,
        found,
        revision={
            "revision": revision,
            "down_revision": migration_head(root) or "",
            "create_date": f"{now:%Y-%m-%d %H:%M:%S}",
        },
    )
    files = {
        Path("app/models") / f"{resource.name}.py": rendered["model"],
        Path("app/schemas") / f"{resource.name}.py": rendered["schema"],
        Path("app/services") / f"{resource.plural}.py": rendered["service"],
        Path("app/api") / f"{resource.plural}.py": rendered["router"],
        Path("migrations/versions") / migration_name: rendered["migration"],
        Path("tests/api") / f"test_{resource.plural}.py": rendered["tests"],
    }
    for path in files:
        if (root / path).exists():
            raise SpecError(f"{path} already exists: the resource was generated before")
    for registry in (API_REGISTRY, MODEL_REGISTRY):
        if not (root / registry).is_file():
            raise SpecError(f"{registry} is missing: restore it from the template")
    files[API_REGISTRY] = registry_with(
        _read(root / API_REGISTRY),
        f"from app.api import {resource.plural}",
        f"router.include_router({resource.plural}.router)",
    )
    files[MODEL_REGISTRY] = registry_with(
        _read(root / MODEL_REGISTRY),
        f"from app.models.{resource.name} import {resource.class_name} as {resource.class_name}",
        None,
    )
    return {path: formatted(path, source, root) for path, source in files.items()}


def declares_pgvector(root: Path) -> bool:
    """Whether the project depends on pgvector (installed is not enough: a shared environment
    may hold it for another project)."""
    project = tomllib.loads((root / "pyproject.toml").read_text()).get("project", {})
    return any(
        re.match(r"pgvector\b", requirement) for requirement in project.get("dependencies", [])
    )


def generate(arguments: argparse.Namespace, root: Path) -> dict[Path, str]:
    known = tables()
    resource = parse_resource(
        arguments.name,
        arguments.fields,
        unique_together=arguments.unique,
        plural=arguments.plural,
        existing_tables=frozenset(Base.metadata.tables),
        with_vector=declares_pgvector(root),
        id_type=arguments.id,
    )
    check_names(resource)
    return planned_files(resource, root, known)


def main(argv: list[str]) -> int:
    command = parser()
    if not argv or argv[0] != "resource":
        command.error("the one thing `new` makes is a resource: python -m app new resource ...")
    arguments = command.parse_args(argv[1:])
    try:
        files = generate(arguments, PROJECT_ROOT)
    except SpecError as error:
        print(f"error: {error}\nnothing was written", file=sys.stderr)
        return 2
    for path, source in files.items():
        if arguments.dry_run:
            print(f"--- {path}\n{source}")
        else:
            (PROJECT_ROOT / path).write_text(source)
            print(f"wrote {path}")
    if arguments.dry_run:
        print("dry run: nothing was written")
    else:
        print("next: review the migration, then `uv run alembic upgrade head` and `uv run pytest`")
    return 0
