"""Turns a checked resource description into file contents, from the templates beside it.

The layout of each file is in `scaffold/templates/` (edit those for house style); this module
only decides what each field becomes in the model, schemas, migration and tests."""

from dataclasses import dataclass
from pathlib import Path
from string import Template

from scaffold.spec import INT_BOUNDS, Field, Resource

TEMPLATES = Path(__file__).parent / "templates"
INT4_MIN = -(2**31)
TEST_LENGTH_LIMIT = 100_000  # longer strings are not worth sending in a test


@dataclass(frozen=True)
class Reference:
    """What a foreign key points at, as the generated code needs it."""

    table: str
    class_name: str
    module: str  # app.models.<module>, app.schemas.<module>
    # The generated tests create the referenced row: users through the `user_factory` fixture,
    # generated resources through their test module's create_<name>().
    test_creator: str | None


def render_template(template: str, **values: object) -> str:
    return Template((TEMPLATES / template).read_text()).substitute(values)


def lines(items: list[str], indent: int = 0) -> str:
    return "\n".join(" " * indent + item for item in items)


def import_lines(imports: dict[str, set[str]]) -> str:
    """`from module import a, b` lines; the formatter sorts them afterwards."""
    return lines(
        [
            f"import {module}" if not names else f"from {module} import {', '.join(sorted(names))}"
            for module, names in sorted(imports.items())
        ]
    )


class Imports(dict[str, set[str]]):
    def add(self, module: str, *names: str) -> None:
        self.setdefault(module, set()).update(names)


def enum_class(resource: Resource, spec: Field) -> str:
    return resource.class_name + "".join(part.capitalize() for part in spec.name.split("_"))


def enum_type_name(resource: Resource, spec: Field) -> str:
    return f"{resource.name}_{spec.name}"


# ─── model ──────────────────────────────────────────────────────────────────────


def column_type(resource: Resource, spec: Field, imports: Imports) -> tuple[str, str | None]:
    """The Python type of the column's values and its SQLAlchemy type (None: from Mapped)."""
    simple = {
        "text": ("str", "Text"),
        "int": ("int", "Integer"),
        "bigint": ("int", "BigInteger"),
        "bool": ("bool", "Boolean"),
        "float": ("float", "Double"),
        "date": ("date", "Date"),
        "uuid": ("UUID", "Uuid"),
    }
    if spec.type in simple:
        python, sql = simple[spec.type]
        imports.add("sqlalchemy", sql)
        if python == "date":
            imports.add("datetime", "date")
        if python == "UUID":
            imports.add("uuid", "UUID")
        return python, sql
    if spec.type == "str":
        imports.add("sqlalchemy", "String")
        return "str", f"String({spec.length})"
    if spec.type == "decimal":
        imports.add("sqlalchemy", "Numeric")
        imports.add("decimal", "Decimal")
        return "Decimal", f"Numeric({spec.precision}, {spec.scale})"
    if spec.type == "datetime":
        return "datetime", "DateTime(timezone=True)"  # imported for created_at anyway
    if spec.type == "json":
        imports.add("typing", "Any")
        imports.add("sqlalchemy.dialects.postgresql", "JSONB")
        # An optional field stores None as SQL NULL, not as the JSON value null.
        return "Any", "JSONB(none_as_null=True)" if spec.optional else "JSONB"
    if spec.type == "enum":
        imports.add("sqlalchemy", "Enum")
        name = enum_class(resource, spec)
        return name, f'Enum({name}, name="{enum_type_name(resource, spec)}")'
    if spec.type == "vector":
        imports.add("pgvector.sqlalchemy", "Vector")
        return "list[float]", f"Vector({spec.dimensions})"
    imports.add("sqlalchemy", "ForeignKey")
    return "int", None


def foreign_key(spec: Field) -> str:
    on_delete = ', ondelete="SET NULL"' if spec.optional else ""
    return f'ForeignKey("{spec.target}.id"{on_delete})'


def model_column(resource: Resource, spec: Field, imports: Imports) -> str:
    python, sql = column_type(resource, spec, imports)
    # A key is a bigint, as the ids it refers to are.
    arguments = [sql] if sql else ["BigInteger", foreign_key(spec)]
    if spec.type == "fk" and not spec.unique:
        arguments.append("index=True")  # joins and the referenced row's deletes look it up
    if spec.unique:
        arguments.append("unique=True")
    if spec.index:
        arguments.append("index=True")
    if spec.default is not None:
        arguments.append(f'server_default="{spec.default}"')
    annotation = f"{python} | None" if spec.optional else python
    return f"{spec.column}: Mapped[{annotation}] = mapped_column({', '.join(arguments)})"


def render_model(resource: Resource, references: dict[str, Reference]) -> str:
    imports = Imports()
    imports.add("datetime", "datetime")
    imports.add("sqlalchemy", "BigInteger", "DateTime", "Identity", "func")
    imports.add("sqlalchemy.orm", "Mapped", "mapped_column")
    imports.add("app.db.base", "Base")
    columns = [model_column(resource, spec, imports) for spec in resource.fields]
    enums = []
    for spec in resource.fields:
        if spec.type == "enum":
            imports.add("enum", "StrEnum")
            members = [f'{member} = "{member}"' for member in spec.members]
            enums.append(f"class {enum_class(resource, spec)}(StrEnum):\n{lines(members, 4)}\n\n")
    table_args = ""
    if resource.unique_together:
        imports.add("sqlalchemy", "UniqueConstraint")
        columns_listed = ", ".join(f'"{column}"' for column in resource.unique_together)
        name = f"uq_{resource.plural}_{'_'.join(resource.unique_together)}"
        table_args = f'    __table_args__ = (UniqueConstraint({columns_listed}, name="{name}"),)\n'
    relationships = []
    type_checking = []
    keyed = [spec for spec in resource.fields if spec.type == "fk"]
    for spec in keyed:
        reference = references[spec.name]
        imports.add("sqlalchemy.orm", "relationship")
        annotation = (
            f'"{reference.class_name} | None"' if spec.optional else f'"{reference.class_name}"'
        )
        # Two keys to one table need to say which relationship uses which.
        same_target = [other for other in keyed if other.target == spec.target]
        keys = (
            f'foreign_keys="{resource.class_name}.{spec.column}", ' if len(same_target) > 1 else ""
        )
        relationships.append(
            f'{spec.relationship}: Mapped[{annotation}] = relationship({keys}lazy="raise")'
        )
        type_checking.append(f"from {reference.module} import {reference.class_name}")
    if type_checking:
        imports.add("typing", "TYPE_CHECKING")
    source_imports = import_lines(imports)
    if type_checking:
        source_imports += "\n\nif TYPE_CHECKING:\n" + lines(sorted(set(type_checking)), 4)
    return render_template(
        "model.py.tmpl",
        imports=source_imports,
        enums="".join(enums),
        class_name=resource.class_name,
        table=resource.plural,
        table_args=table_args,
        columns=lines(columns, 4),
        relationships=("\n" + lines(relationships, 4)) if relationships else "",
    )


# ─── schemas ────────────────────────────────────────────────────────────────────


def schema_types(resource: Resource, spec: Field, imports: Imports) -> tuple[str, str]:
    """The field's type in the request schema (validated like the column) and in the response."""
    if spec.type in ("str", "text"):
        imports.add("app.schemas.fields", "Text")
        if spec.type == "text":
            return "Text", "str"
        imports.add("typing", "Annotated")
        imports.add("pydantic", "StringConstraints")
        return f"Annotated[Text, StringConstraints(max_length={spec.length})]", "str"
    if spec.type == "fk":
        imports.add("app.schemas.fields", "Id")
        return "Id", "int"
    if spec.type in ("int", "bigint"):
        imports.add("typing", "Annotated")
        imports.add("pydantic", "Field")
        if spec.type == "bigint":
            return "Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]", "int"
        imports.add("app.schemas.fields", "INT4_MAX")
        return "Annotated[int, Field(ge=-INT4_MAX - 1, le=INT4_MAX)]", "int"
    if spec.type == "bool":
        return "bool", "bool"
    if spec.type == "float":
        imports.add("typing", "Annotated")
        imports.add("pydantic", "Field")
        return "Annotated[float, Field(allow_inf_nan=False)]", "float"
    if spec.type == "decimal":
        imports.add("typing", "Annotated")
        imports.add("pydantic", "Field")
        imports.add("decimal", "Decimal")
        limits = f"max_digits={spec.precision}, decimal_places={spec.scale}"
        return f"Annotated[Decimal, Field({limits})]", "Decimal"
    if spec.type == "date":
        imports.add("datetime", "date")
        return "date", "date"
    if spec.type == "datetime":
        # A time without a zone is refused (422), and one Python could not read back in UTC.
        imports.add("app.schemas.fields", "Instant")
        return "Instant", "datetime"
    if spec.type == "uuid":
        imports.add("uuid", "UUID")
        return "UUID", "UUID"
    if spec.type == "json":
        imports.add("pydantic", "JsonValue")
        return "JsonValue", "JsonValue"
    if spec.type == "enum":
        name = enum_class(resource, spec)
        imports.add(f"app.models.{resource.name}", name)
        return name, name
    imports.add("typing", "Annotated")
    imports.add("pydantic", "BeforeValidator", "Field")
    size = f"min_length={spec.dimensions}, max_length={spec.dimensions}"
    return (
        f"Annotated[list[Component], Field({size})]",
        "Annotated[list[float], BeforeValidator(as_list)]",
    )


VECTOR_HELPERS = '''\
# pgvector stores float4: refuse NaN, infinities and values float4 cannot hold.
Component = Annotated[float, Field(allow_inf_nan=False, ge=-1e38, le=1e38)]


def as_list(value: object) -> object:
    """pgvector reads a vector as a numpy array: answer it as a list of floats."""
    to_list = getattr(value, "tolist", None)
    return to_list() if callable(to_list) else value

'''


def schema_default(resource: Resource, spec: Field, imports: Imports) -> str | None:
    if spec.default is None:
        return "None" if spec.optional else None
    if spec.type == "bool":
        return spec.default.capitalize()
    if spec.type == "float":
        return repr(float(spec.default))
    if spec.type == "decimal":
        imports.add("decimal", "Decimal")
        return f'Decimal("{spec.default}")'
    if spec.type in ("str", "text"):
        return f'"{spec.default}"'
    if spec.type == "enum":
        return f"{enum_class(resource, spec)}.{spec.default}"
    return spec.default


def render_schema(resource: Resource, references: dict[str, Reference]) -> str:
    imports = Imports()
    imports.add("datetime", "datetime")
    imports.add("pydantic", "BaseModel", "ConfigDict")
    create_fields, read_fields = [], []
    for spec in resource.fields:
        create_type, read_type = schema_types(resource, spec, imports)
        if spec.optional:
            create_type, read_type = f"{create_type} | None", f"{read_type} | None"
        default = schema_default(resource, spec, imports)
        create_fields.append(
            f"{spec.column}: {create_type}" + (f" = {default}" if default is not None else "")
        )
        read_fields.append(f"{spec.column}: {read_type}")
    detail = ""
    keyed = [spec for spec in resource.fields if spec.type == "fk"]
    if keyed:
        nested = []
        for spec in keyed:
            reference = references[spec.name]
            schema_module = reference.module.replace("app.models.", "app.schemas.", 1)
            imports.add(schema_module, f"{reference.class_name}Read")
            optional = " | None" if spec.optional else ""
            nested.append(f"{spec.relationship}: {reference.class_name}Read{optional}")
        detail = f"\n\nclass {resource.class_name}Detail({resource.class_name}Read):\n"
        detail += lines(nested, 4) + "\n"
    with_vector = any(spec.type == "vector" for spec in resource.fields)
    return render_template(
        "schema.py.tmpl",
        imports=import_lines(imports),
        helpers=VECTOR_HELPERS if with_vector else "",
        class_name=resource.class_name,
        create_fields=lines(create_fields, 4),
        read_fields=lines(read_fields, 4),
        detail=detail,
    )


# ─── service and router ─────────────────────────────────────────────────────────


def render_service(resource: Resource) -> str:
    imports = Imports()
    imports.add("sqlalchemy", "delete", "select", "update")
    imports.add("sqlalchemy.ext.asyncio", "AsyncSession")
    imports.add("app.db.reads", "Reader")
    imports.add(f"app.models.{resource.name}", resource.class_name)
    imports.add("app.schemas.page", "Page")
    imports.add(
        f"app.schemas.{resource.name}", f"{resource.class_name}Create", f"{resource.class_name}Read"
    )
    imports.add("app.services.pages", "PageQuery")
    keyed = [spec for spec in resource.fields if spec.type == "fk"]
    load = ""
    if keyed:
        imports.add("sqlalchemy.orm", "selectinload")
        options = [f"selectinload({resource.class_name}.{spec.relationship})" for spec in keyed]
        load = f".options({', '.join(options)})"
    return render_template(
        "service.py.tmpl",
        imports=import_lines(imports),
        name=resource.name,
        plural=resource.plural,
        name_constant=resource.name.upper(),
        class_name=resource.class_name,
        load_references=load,
    )


def render_router(resource: Resource) -> str:
    keyed = any(spec.type == "fk" for spec in resource.fields)
    detail = f"{resource.class_name}Detail" if keyed else f"{resource.class_name}Read"
    return render_template(
        "router.py.tmpl",
        name=resource.name,
        plural=resource.plural,
        class_name=resource.class_name,
        path=resource.path,
        human=resource.name.replace("_", " "),
        detail_class=detail,
        detail_import=f", {detail}" if keyed else "",
    )


# ─── migration ──────────────────────────────────────────────────────────────────


def migration_type(resource: Resource, spec: Field, imports: Imports) -> str:
    simple = {
        "text": "sa.Text()",
        "int": "sa.Integer()",
        "bigint": "sa.BigInteger()",
        "bool": "sa.Boolean()",
        "float": "sa.Double()",
        "date": "sa.Date()",
        "datetime": "sa.DateTime(timezone=True)",
        "uuid": "sa.Uuid()",
        "fk": "sa.BigInteger()",
    }
    if spec.type in simple:
        return simple[spec.type]
    if spec.type == "str":
        return f"sa.String(length={spec.length})"
    if spec.type == "decimal":
        return f"sa.Numeric(precision={spec.precision}, scale={spec.scale})"
    if spec.type == "json":
        imports.add("sqlalchemy.dialects", "postgresql")
        return "postgresql.JSONB(astext_type=sa.Text())"
    if spec.type == "enum":
        members = ", ".join(f'"{member}"' for member in spec.members)
        return f'sa.Enum({members}, name="{enum_type_name(resource, spec)}")'
    imports.add("pgvector.sqlalchemy", "Vector")
    return f"Vector({spec.dimensions})"


def render_migration(
    resource: Resource, *, revision: str, down_revision: str | None, create_date: str
) -> str:
    imports = Imports()
    table = resource.plural
    columns, constraints, indexes, drop_types = [], [], [], []
    for spec in resource.fields:
        arguments = [f'"{spec.column}"', migration_type(resource, spec, imports)]
        if spec.default is not None:
            arguments.append(f'server_default="{spec.default}"')
        arguments.append(f"nullable={spec.optional}")
        columns.append(f"sa.Column({', '.join(arguments)}),")
        if spec.type == "fk":
            name = f"fk_{table}_{spec.column}_{spec.target}"
            on_delete = ', ondelete="SET NULL"' if spec.optional else ""
            constraints.append(
                f'sa.ForeignKeyConstraint(["{spec.column}"], ["{spec.target}.id"], '
                f'name=op.f("{name}"){on_delete}),'
            )
        if spec.unique:
            name = f"uq_{table}_{spec.column}"
            constraints.append(f'sa.UniqueConstraint("{spec.column}", name=op.f("{name}")),')
        if spec.index or (spec.type == "fk" and not spec.unique):
            indexes.append((f"ix_{table}_{spec.column}", spec.column))
        if spec.type == "enum":
            drop_types.append(
                f'sa.Enum(name="{enum_type_name(resource, spec)}").drop(op.get_bind())'
            )
    constraints.append(f'sa.PrimaryKeyConstraint("id", name=op.f("pk_{table}")),')
    if resource.unique_together:
        listed = ", ".join(f'"{column}"' for column in resource.unique_together)
        name = f"uq_{table}_{'_'.join(resource.unique_together)}"
        constraints.append(f'sa.UniqueConstraint({listed}, name=op.f("{name}")),')
    create_indexes = [
        f'op.create_index(op.f("{name}"), "{table}", ["{column}"], unique=False)'
        for name, column in indexes
    ]
    drop_indexes = [f'op.drop_index(op.f("{name}"), table_name="{table}")' for name, _ in indexes]
    if drop_types:
        drop_types.insert(0, "# Dropping the table leaves its enum types behind.")
    return render_template(
        "migration.py.tmpl",
        imports=import_lines(imports),
        table=table,
        revision=revision,
        down_revision=down_revision or "",
        down_revision_repr=f'"{down_revision}"' if down_revision else "None",
        create_date=create_date,
        columns=lines(columns, 8),
        constraints=lines(constraints, 8),
        create_indexes=lines(create_indexes, 4),
        drop_indexes=lines(drop_indexes, 4),
        drop_types=lines(drop_types, 4),
    )


# ─── tests ──────────────────────────────────────────────────────────────────────


def sample(resource: Resource, spec: Field, imports: Imports) -> str:
    """An expression of a valid value that differs for each `number` from 1 to 9."""
    if spec.type == "str":
        prefix = f"{spec.name}-"[: (spec.length or 1) - 1]
        return 'f"' + prefix + '{number}"' if prefix else "str(number)"
    if spec.type == "text":
        return 'f"' + spec.name + ' {number}"'
    if spec.type == "int":
        return "number"
    if spec.type == "bigint":
        return "2**40 + number"
    if spec.type == "bool":
        return "number > 1"
    if spec.type == "float":
        return "number + 0.5"
    if spec.type == "decimal":
        imports.add("decimal", "Decimal")
        return f"str(Decimal(number).scaleb(-{spec.scale}))"
    if spec.type == "date":
        imports.add("datetime", "date")
        return "date(2026, 1, number).isoformat()"
    if spec.type == "datetime":
        imports.add("datetime", "UTC", "datetime")
        return "datetime(2026, 1, number, 12, 30, tzinfo=UTC).isoformat()"
    if spec.type == "uuid":
        imports.add("uuid", "UUID")
        return "str(UUID(int=number))"
    if spec.type == "json":
        return '{"number": number}'
    if spec.type == "enum":
        name = enum_class(resource, spec)
        imports.add(f"app.models.{resource.name}", name)
        return f"list({name})[number % len({name})].value"
    if spec.type == "vector":
        return f"[number / 4] * {spec.dimensions}"
    return f"{spec.relationship}_parent.id"


def invalid_values(spec: Field) -> dict[str, str]:
    """Values the request schema refuses (422), by case name."""
    cases: dict[str, str] = {}
    if not spec.optional and spec.default is None:
        cases["missing"] = "MISSING"
        if spec.type != "json":  # null is a JSON value like any other: stored as such
            cases["null"] = "None"
    if spec.type == "str" and (spec.length or 0) < TEST_LENGTH_LIMIT:
        cases["too-long"] = f'"x" * {(spec.length or 0) + 1}'
    if spec.type in ("str", "text"):
        cases["nul"] = '"\\x00"'
        cases["lone-surrogate"] = '"\\ud800"'
    if spec.type in INT_BOUNDS:
        cases["too-big"] = f"2**{63 if spec.type == 'bigint' else 31}"
    if spec.type == "bool":
        cases["not-a-bool"] = '"maybe"'
    if spec.type == "float":
        cases["infinite"] = '"inf"'
    if spec.type == "decimal" and spec.precision is not None and spec.scale is not None:
        cases["too-many-digits"] = f'"{"9" * (spec.precision - spec.scale + 1)}"'
        cases["too-many-places"] = f'"0.{"1" * (spec.scale + 1)}"'
    if spec.type == "date":
        cases["no-such-day"] = '"2026-02-30"'
    if spec.type == "datetime":
        cases["no-time-zone"] = '"2026-01-01T12:30:00"'
        # Instants PostgreSQL stores but Python cannot read back: past 9999 or before 1 in UTC.
        cases["after-9999-in-utc"] = '"9999-12-31T23:59:59-23:59"'
        cases["before-year-1-in-utc"] = '"0001-01-01T00:30:00+01:00"'
        # Python's first and last instants, which asyncpg writes as -infinity and infinity.
        cases["first-python-instant"] = '"0001-01-01T00:00:00+00:00"'
        cases["last-python-instant"] = '"9999-12-31T23:59:59.999999+00:00"'
    if spec.type == "uuid":
        cases["not-a-uuid"] = '"not-a-uuid"'
    if spec.type == "enum":
        cases["not-a-member"] = '"NOT-A-MEMBER"'
    if spec.type == "fk":
        cases["not-an-id"] = "0"
    if spec.type == "vector":
        cases["wrong-size"] = f"[0.5] * {(spec.dimensions or 0) + 1}"
    return {f"{spec.name}-{case}": value for case, value in cases.items()}


def edge_values(spec: Field) -> dict[str, str]:
    """Values at the edges of what the field's column holds, by case name: each is stored and
    read back as sent (the service never stores a value it cannot read back)."""
    cases: dict[str, str] = {}
    if spec.type == "str" and (spec.length or 0) <= TEST_LENGTH_LIMIT:
        cases["longest-of-widest-characters"] = f'"\\U0010ffff" * {spec.length}'
    if spec.type == "text":
        cases["controls-but-nul"] = '"\\x01\\x1f\\x7f\\x9f"'
        cases["widest-characters"] = '"\\U0010ffff\\U0001f600" * 1000'
    if spec.type in INT_BOUNDS:
        bits = 63 if spec.type == "bigint" else 31
        cases |= {"smallest": f"-(2**{bits})", "largest": f"2**{bits} - 1"}
    if spec.type == "float":
        cases |= {"largest": "1.7976931348623157e308", "most-negative": "-1.7976931348623157e308"}
        cases["smallest-positive"] = "5e-324"
    if spec.type == "decimal" and spec.precision is not None and spec.scale is not None:
        digits = "9" * (spec.precision - spec.scale) or "0"
        largest = digits + ("." + "9" * spec.scale if spec.scale else "")
        cases |= {"largest": f'"{largest}"', "most-negative": f'"-{largest}"'}
    if spec.type == "date":
        cases |= {"first-day": '"0001-01-01"', "last-day": '"9999-12-31"'}
    if spec.type == "datetime":
        cases["first-instant"] = '"0001-01-01T00:00:00.000001+00:00"'
        cases["last-instant"] = '"9999-12-31T23:59:59.999998+00:00"'
        cases["first-day-far-east"] = '"0001-01-01T23:59:59+23:59"'
        cases["last-day-far-west"] = '"9999-12-31T00:00:00-23:59"'
    if spec.type == "uuid":
        cases["largest"] = '"ffffffff-ffff-ffff-ffff-ffffffffffff"'
    if spec.type == "json":
        cases["big-numbers-and-wide-text"] = '{"big": 2**70, "tiny": 5e-324, "text": "\\U0010ffff"}'
    if spec.type == "vector":
        # Powers of two: float4 holds them exactly, so they read back as sent.
        cases["largest"] = f"[2.0**126] * {spec.dimensions}"
        cases["smallest-normal"] = f"[-(2.0**-126)] * {spec.dimensions}"
    return {f"{spec.name}-{case}": value for case, value in cases.items()}


def render_tests(resource: Resource, references: dict[str, Reference]) -> str:
    imports = Imports()
    imports.add(f"app.schemas.{resource.name}", f"{resource.class_name}Create")
    imports.add(f"app.schemas.{resource.name}", f"{resource.class_name}Read")
    imports.add("tests.support", "UserFactory")
    values = {
        "name": resource.name,
        "plural": resource.plural,
        "class_name": resource.class_name,
        "path": resource.path,
    }
    parents, payload, invalid, edges = [], [], [], []
    for spec in resource.fields:
        if spec.type == "fk":
            reference = references[spec.name]
            if reference.test_creator is None:
                parents.append(f"{spec.relationship}_parent = await user_factory()")
            else:
                module, creator = reference.test_creator.rsplit(".", 1)
                imports.add(module, creator)
                parents.append(
                    f"{spec.relationship}_parent = await {creator}(client, user_factory, number)"
                )
        value = sample(resource, spec, imports)
        if spec.type == "fk" and references[spec.name].test_creator is not None:
            value = f'{spec.relationship}_parent["id"]'
        payload.append(f'"{spec.column}": {value},')
        invalid += [
            f'"{case}": ' + "{" + f'"{spec.column}": {bad}' + "},"
            for case, bad in invalid_values(spec).items()
        ]
        edges += [
            f'"{case}": ' + "{" + f'"{spec.column}": {edge}' + "},"
            for case, edge in edge_values(spec).items()
        ]
    invalid_cases = ""
    if invalid:
        invalid_cases = "MISSING: Any = object()  # marks a field left out of a request body\n"
        invalid_cases += "INVALID: dict[str, dict[str, Any]] = {\n" + lines(invalid, 4) + "\n}\n"
    edge_cases = ""
    if edges:
        edge_cases = "EDGES: dict[str, dict[str, Any]] = {\n" + lines(edges, 4) + "\n}\n"
    if invalid or edges:
        imports.add("json")
    sections = []
    if invalid:
        sections.append(render_template("test_api_invalid.py.tmpl", **values))
    if edges:
        sections.append(render_template("test_api_edges.py.tmpl", **values))
    optional = [
        spec.column for spec in resource.fields if spec.optional or spec.default is not None
    ]
    if optional:
        listed = (
            "("
            + ", ".join(f'"{column}"' for column in optional)
            + ("," if len(optional) == 1 else "")
            + ")"
        )
        sections.append(render_template("test_api_optional.py.tmpl", optional=listed, **values))
    if resource.unique_together or any(spec.unique for spec in resource.fields):
        sections.append(render_template("test_api_unique.py.tmpl", **values))
    imports.add("asyncio")
    imports.add("collections.abc", "AsyncIterator")
    imports.add("secrets")
    imports.add("fastapi", "FastAPI")
    imports.add("httpx", "ASGITransport")
    imports.add("app.models", "User")
    sections.append(render_template("test_api_races.py.tmpl", **values))
    keyed = [spec for spec in resource.fields if spec.type == "fk"]
    if keyed:
        imports.add("sqlalchemy.exc", "InvalidRequestError")
        imports.add("sqlalchemy.ext.asyncio", "AsyncSession")
        imports.add(f"app.models.{resource.name}", resource.class_name)
        columns = "[" + ", ".join(f'"{spec.column}"' for spec in keyed) + "]"
        asserts = [
            f'assert fetched.json()["{spec.relationship}"]["id"] == created["{spec.column}"]'
            for spec in keyed
        ]
        sections.append(
            render_template(
                "test_api_references.py.tmpl",
                reference_columns=columns,
                reference_asserts=lines(asserts, 4),
                first_reference=keyed[0].relationship,
                **values,
            )
        )
    main = render_template(
        "test_api.py.tmpl",
        imports=import_lines(imports),
        invalid_cases=invalid_cases,
        edge_cases=edge_cases,
        parents=lines(parents, 4),
        payload=lines(payload, 8),
        **values,
    )
    return main + "".join(sections)
