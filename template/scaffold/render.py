"""Turns a checked resource description into file contents, from the templates beside it.

The generator's Python decides what each field is (its entry in `scaffold/types.py`, with the
field's own values); the Mako templates in `scaffold/templates/` hold the loops and decide how
each file reads (edit those for house style). The migration is Alembic's own rendering of the
table the generated model declares."""

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic.autogenerate import render_python_code
from alembic.operations.ops import (
    CreateIndexOp,
    CreateTableOp,
    DowngradeOps,
    DropIndexOp,
    DropTableOp,
    UpgradeOps,
)
from alembic.runtime.migration import MigrationContext
from mako.template import Template  # type: ignore[import-untyped]  # Mako has no type hints
from sqlalchemy import Enum, Table

from scaffold.spec import Field, Resource
from scaffold.types import FIELD_TYPES, KEY_TYPES

TEMPLATES = Path(__file__).parent / "templates"
TEST_LENGTH_LIMIT = 100_000  # longer strings are not worth sending in a test
# A filter kind's query parameters, by suffix, with the comparison each makes.
FILTERS = {"equal": [("", "eq")], "range": [("_min", "ge"), ("_max", "le")], "": []}


@dataclass(frozen=True)
class Reference:
    """What a foreign key points at, as the generated code needs it."""

    key_type: str = "int"  # its id's: int or uuid
    # Its model's class and module (app.models.<module>) when app.schemas.<module> reads it as
    # <class>Read: the generated model then has a relationship to it, its detail nests it.
    class_name: str | None = None
    module: str | None = None


@dataclass(frozen=True)
class Column:
    """One field as the templates write it: its type's table entry, filled in."""

    spec: Field
    python: str
    sql: str  # mapped_column()'s arguments
    request: str
    plain_request: str  # without `| None`: a list filter's type
    response: str
    default: str | None  # the request schema's default
    sample: str
    invalid: dict[str, str]
    edges: dict[str, str]
    filter: str | None
    reference: Reference | None


def enum_class(resource: Resource, spec: Field) -> str:
    return resource.class_name + "".join(part.capitalize() for part in spec.name.split("_"))


def field_values(resource: Resource, spec: Field) -> dict[str, Any]:
    """What the format strings of `scaffold/types.py` may name."""
    whole = (spec.precision or 0) - (spec.scale or 0)
    largest = ("9" * whole or "0") + ("." + "9" * spec.scale if spec.scale else "")
    return {
        "name": spec.name,
        "target": spec.target,
        "length": spec.length,
        "prefix": f"{spec.name}-"[: (spec.length or 1) - 1],
        # Short strings keep the last digits of `number` (11 in str(1) is 1).
        "cut": f"[-{spec.length}:]" if (spec.length or 0) < 10 else "",
        "precision": spec.precision,
        "scale": spec.scale,
        "whole": whole,
        "largest": largest,
        "dimensions": spec.dimensions,
        "enum": enum_class(resource, spec),
        "enum_type": f"{resource.name}_{spec.name}",
        "default": spec.default,
        "default_title": (spec.default or "").capitalize(),
        "optional": spec.optional,
        "bits": 63 if spec.type == "bigint" else 31,
    }


def cases(kind: dict[str, str], spec: Field, values: dict[str, Any]) -> dict[str, str]:
    return {
        f"{spec.name}-{case}": text.format(**values)
        for case, text in kind.items()
        # Strings longer than this are not worth sending in a test.
        if "{length}" not in text or (spec.length or 0) < TEST_LENGTH_LIMIT
    }


def column(resource: Resource, spec: Field, references: dict[str, Reference]) -> Column:
    reference = references.get(spec.name)
    kind = KEY_TYPES[reference.key_type] if reference else FIELD_TYPES[spec.type]
    values = field_values(resource, spec)
    sql = [kind.column.format(**values)]
    if spec.target is not None:
        # Without an ON DELETE, PostgreSQL refuses the delete (NO ACTION) as RESTRICT does.
        on_delete = (
            f', ondelete="{spec.deletes.upper()}"' if spec.on_delete or spec.optional else ""
        )
        sql.append(f'ForeignKey("{spec.target}.id"{on_delete})')
        if not spec.unique:
            sql.append("index=True")  # joins and the referenced row's deletes look it up
    if spec.unique:
        sql.append("unique=True")
    if spec.index:
        sql.append("index=True")
    if spec.default is not None:
        sql.append(f'server_default="{spec.default}"')
    default = kind.default.format(**values) if spec.default is not None and kind.default else None
    invalid = {}
    if not spec.optional and spec.default is None:
        invalid[f"{spec.name}-missing"] = "MISSING"
        if not kind.null_is_a_value:
            invalid[f"{spec.name}-null"] = "None"
    optional = " | None" if spec.optional else ""
    return Column(
        spec=spec,
        python=kind.python.format(**values) + optional,
        sql=", ".join(sql),
        request=kind.request.format(**values) + optional,
        plain_request=kind.request.format(**values),
        response=kind.response.format(**values) + optional,
        default=default or ("None" if spec.optional else None),
        sample=kind.sample.format(**values, number="{number}"),
        invalid=invalid | cases(kind.invalid, spec, values),
        edges=cases(kind.edges, spec, values),
        # Lists sort and filter on indexed columns only: others would read every row.
        filter=kind.filter if spec.index or spec.unique or spec.target else None,
        reference=reference,
    )


def render(
    template: str, resource: Resource, references: dict[str, Reference], **extra: Any
) -> str:
    columns = [column(resource, spec, references) for spec in resource.fields]
    keyed = [item for item in columns if item.reference is not None]
    nested = [item for item in keyed if item.reference and item.reference.class_name]
    values = {
        "resource": resource,
        "columns": columns,
        "keyed": keyed,
        "nested": nested,
        "enums": [
            (enum_class(resource, spec), spec.members)
            for spec in resource.fields
            if spec.type == "enum"
        ],
        "uses": {spec.type for spec in resource.fields},
        "filters": [
            (f"{item.spec.column}{suffix}", item, operator)
            for item in columns
            for suffix, operator in FILTERS[item.filter or ""]
        ],
        # Sorting by a column of few values (bool, enum) orders little.
        "sort_keys": ["id"]
        + [
            item.spec.column
            for item in columns
            if item.filter and not FIELD_TYPES[item.spec.type].few_values
        ],
        "detail": f"{resource.class_name}Detail" if nested else f"{resource.class_name}Read",
        "id_type": "UUID" if resource.id_type == "uuid" else "int",
        # A request's id: in its column's range (an id out of range is a 422, not a 500).
        "path_id": "UUID" if resource.id_type == "uuid" else "ResourceId",
        **extra,
    }
    # Python source, not HTML: Mako's escaping has nothing to do here.
    source = Template(filename=str(TEMPLATES / template), strict_undefined=True)  # noqa: S702
    text: str = source.render(**values)
    return text


def render_files(
    resource: Resource, references: dict[str, Reference], *, revision: dict[str, str]
) -> dict[str, str]:
    """The modules of the resource, by the kind of module."""
    model = render("model.py.tmpl", resource, references)
    return {
        "model": model,
        "schema": render("schema.py.tmpl", resource, references),
        "service": render("service.py.tmpl", resource, references),
        "router": render("router.py.tmpl", resource, references),
        "tests": render("test_api.py.tmpl", resource, references),
        "migration": render(
            "migration.py.tmpl",
            resource,
            references,
            operations=migration_operations(resource, model),
            **revision,
        ),
    }


# ─── migration ──────────────────────────────────────────────────────────────────


def declared_table(resource: Resource, model: str) -> Table:
    """The table the generated model declares, on the project's metadata and naming
    convention: the model runs as its module would (the process ends after generating)."""
    name = f"app.models.{resource.name}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(model, name, "exec"), module.__dict__)  # noqa: S102  (the code just rendered)
    table: Table = getattr(module, resource.class_name).__table__
    return table


def render_item(kind: str, item: object, _context: object) -> str | Literal[False]:
    """pgvector columns as `Vector(n)`, as the project's migrations/env.py writes them."""
    if kind == "type" and type(item).__module__.startswith("pgvector"):
        return f"Vector({getattr(item, 'dim', None)})"
    return False


def migration_operations(resource: Resource, model: str) -> dict[str, Any]:
    table = declared_table(resource, model)
    indexes = sorted(table.indexes, key=lambda index: str(index.name))
    upgrade = UpgradeOps(
        ops=[CreateTableOp.from_table(table), *map(CreateIndexOp.from_index, indexes)]
    )
    downgrade = DowngradeOps(
        ops=[*map(DropIndexOp.from_index, indexes), DropTableOp.from_table(table)]
    )
    # No database: PostgreSQL's dialect is enough to render its types.
    context = MigrationContext.configure(dialect_name="postgresql")
    options: dict[str, Any] = {"render_item": render_item, "migration_context": context}
    return {
        "upgrade": render_python_code(upgrade, **options),
        "downgrade": render_python_code(downgrade, **options),
        # Dropping the table leaves its enum types behind.
        "enum_types": sorted(
            column.type.name
            for column in table.columns
            if isinstance(column.type, Enum) and column.type.name
        ),
    }
