"""`python -m app destroy resource NAME [--dry-run]`: removes what `new resource` wrote, and its
registrations.

Refused, with nothing removed (exit status 2), when another table refers to the resource's, when
a later revision follows its own, or when that revision is applied to the configured database:
there the table holds data, and a migration that drops it is what a team reviews instead."""

import argparse
import ast
import asyncio
import sys
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection

from app.cli.database import DatabaseProblemError, database, one_connection
from app.config import PROJECT_ROOT, Settings
from app.db.base import Base
from scaffold.cli import API_REGISTRY, MODEL_REGISTRY, formatted, tables
from scaffold.spec import SpecError


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m app destroy resource",
        description="Remove a generated resource's files and registrations (not yet migrated).",
    )
    command.add_argument("name", help="the resource's singular name, as given to `new resource`")
    command.add_argument("--dry-run", action="store_true", help="say what goes, remove nothing")
    return command


def revision_of(table: str, root: Path) -> Script:
    """The revision that creates the table, refused when a later one follows it."""
    scripts = ScriptDirectory.from_config(Config(root / "alembic.ini"))
    found = [
        script for script in scripts.walk_revisions() if script.path.endswith(f"_create_{table}.py")
    ]
    if not found:
        raise SpecError(f"no revision creates {table} (migrations/versions/*_create_{table}.py)")
    if found[0].nextrev:
        raise SpecError(
            f"revision {found[0].revision} (create {table}) has later revisions: "
            f"{', '.join(sorted(found[0].nextrev))}; write a migration that drops the table instead"
        )
    return found[0]


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


async def applied_heads(settings: Settings) -> tuple[str, ...]:
    async with one_connection(settings) as connection:
        return await connection.run_sync(_current_heads)


def refuse_if_applied(revision: Script, table: str, root: Path) -> None:
    scripts = ScriptDirectory.from_config(Config(root / "alembic.ini"))
    try:
        with database() as settings:
            heads = asyncio.run(applied_heads(settings))
    except DatabaseProblemError as problem:
        raise SpecError(f"cannot tell whether {revision.revision} is applied: {problem}") from None
    applied = {script.revision for script in scripts.iterate_revisions(heads, "base") if script}
    if revision.revision in applied:
        raise SpecError(
            f"revision {revision.revision} (create {table}) is applied to the configured database: downgrade it first "
            f"(`uv run alembic downgrade {revision.down_revision or 'base'}`), or write a "
            "migration that drops the table"
        )


def planned_changes(name: str, root: Path) -> tuple[list[Path], dict[Path, str]]:
    """The files to remove, and the registries without the resource's lines."""
    by_module = {model.__module__: (table, model) for table, model in tables().items()}
    if f"app.models.{name}" not in by_module:
        raise SpecError(f"no resource {name!r}: app/models/{name}.py declares no table")
    table, model = by_module[f"app.models.{name}"]
    referring = sorted(
        other.name
        for other in Base.metadata.tables.values()
        if other.name != table and any(key.column.table.name == table for key in other.foreign_keys)
    )
    if referring:
        raise SpecError(
            f"{', '.join(referring)} refer(s) to {table}: destroy or change those first"
        )
    revision = revision_of(table, root)
    refuse_if_applied(revision, table, root)
    written = [
        Path("app/models") / f"{name}.py",
        Path("app/schemas") / f"{name}.py",
        Path("app/services") / f"{table}.py",
        Path("app/api") / f"{table}.py",
        Path(revision.path).relative_to(root),
        Path("tests/api") / f"test_{table}.py",
    ]
    registries = {
        API_REGISTRY: unregistered(root, API_REGISTRY, "app.api", table),
        MODEL_REGISTRY: unregistered(root, MODEL_REGISTRY, f"app.models.{name}", model.__name__),
    }
    return [path for path in written if (root / path).is_file()], registries


def unregistered(root: Path, path: Path, module: str, name: str) -> str:
    """The registry without `name` in its imports from `module`, nor its router's line (ruff
    may have joined the generator's imports into one statement, wrapped)."""
    source = (root / path).read_text()
    lines = source.splitlines()
    for statement in reversed(ast.parse(source).body):
        if isinstance(statement, ast.ImportFrom) and statement.module == module:
            kept = [
                f"{alias.name} as {alias.asname}" if alias.asname else alias.name
                for alias in statement.names
                if alias.name != name
            ]
            start, end = statement.lineno - 1, statement.end_lineno or statement.lineno
            lines[start:end] = [f"from {module} import {', '.join(kept)}"] if kept else []
    kept_lines = [line for line in lines if line != f"router.include_router({name}.router)"]
    return formatted(path, "\n".join(kept_lines) + "\n", root)


def main(argv: list[str]) -> int:
    command = parser()
    if not argv or argv[0] != "resource":
        command.error("the one thing `destroy` removes is a resource: destroy resource NAME")
    arguments = command.parse_args(argv[1:])
    try:
        removed, registries = planned_changes(arguments.name, PROJECT_ROOT)
    except SpecError as error:
        print(f"error: {error}\nnothing was removed", file=sys.stderr)
        return 2
    for path in removed:
        print(f"{'would remove' if arguments.dry_run else 'removed'} {path}")
        if not arguments.dry_run:
            (PROJECT_ROOT / path).unlink()
    for path, source in registries.items():
        print(f"{'would edit' if arguments.dry_run else 'edited'} {path}")
        if not arguments.dry_run:
            (PROJECT_ROOT / path).write_text(source)
    if arguments.dry_run:
        print("dry run: nothing was removed")
    return 0
