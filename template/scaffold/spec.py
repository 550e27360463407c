"""The command line's resource description, parsed and checked before anything is written."""

import keyword
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS

from scaffold.types import FIELD_TYPES

FIELD_PATTERN = re.compile(
    r"^(?P<name>[^:]+):(?P<type>[a-z]+)(?:\((?P<arguments>[^)]*)\))?"
    r"(?P<optional>\?)?(?:=(?P<default>[^:]*))?(?P<modifiers>(?::[a-z]+)*)$"
)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# Written unquoted in SQL by hand and by tools, these break queries as table or column names:
# the words SQLAlchemy quotes for PostgreSQL, and the key words PostgreSQL reserves it lacks.
RESERVED_SQL_WORDS = frozenset(RESERVED_WORDS) | {
    "collation",
    "concurrently",
    "lateral",
    "system_user",
    "tablesample",
}
# Columns every generated model has, and names the generated code uses for itself.
RESERVED_FIELD_NAMES = frozenset({"id", "created_at", "updated_at", "metadata", "registry"})
TYPES_WITH_ARGUMENTS = {name for name, kind in FIELD_TYPES.items() if kind.example}
SIMPLE_TYPES = set(FIELD_TYPES) - TYPES_WITH_ARGUMENTS
TYPES_WITH_DEFAULTS = {name for name, kind in FIELD_TYPES.items() if kind.default}
UNINDEXABLE = {name for name, kind in FIELD_TYPES.items() if not kind.indexable}
LOW_CARDINALITY = {name for name, kind in FIELD_TYPES.items() if kind.few_values}
INT_BOUNDS = {"int": 2**31, "bigint": 2**63}
MAX_VARCHAR = 10_485_760
MAX_NUMERIC_PRECISION = 1000
MAX_VECTOR_DIMENSIONS = 16_000
ON_DELETE = ("cascade", "restrict", "set null")
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer identifiers, constraint names included


class SpecError(ValueError):
    """Input the generator refuses; the message says what to write instead."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    length: int | None = None  # str(N)
    precision: int | None = None  # decimal(p, s)
    scale: int | None = None
    members: tuple[str, ...] = ()  # enum(a|b|c)
    target: str | None = None  # fk(table)
    on_delete: str | None = None  # fk(table, cascade)
    dimensions: int | None = None  # vector(N)
    optional: bool = False
    default: str | None = None
    unique: bool = False
    index: bool = False

    @property
    def column(self) -> str:
        """The column's name: a foreign key's column ends in `_id`."""
        if self.type == "fk" and not self.name.endswith("_id"):
            return f"{self.name}_id"
        return self.name

    @property
    def deletes(self) -> str:
        """What deleting the referenced row does: an optional key is set null unless told."""
        return self.on_delete or ("set null" if self.optional else "restrict")

    @property
    def relationship(self) -> str:
        return self.name.removesuffix("_id") if self.type == "fk" else self.name


@dataclass(frozen=True)
class Resource:
    name: str  # singular, snake_case: line_item
    plural: str  # line_items: the table, the modules of services, routers and tests
    fields: tuple[Field, ...]
    unique_together: tuple[str, ...] = ()  # columns
    id_type: str = "int"  # or "uuid": UUIDv7, made by app.db.ids.uuid7
    existing_tables: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def path(self) -> str:
        return "/" + self.plural.replace("_", "-")


def pluralize(name: str) -> str:
    if re.search(r"(s|x|z|ch|sh)$", name):
        return name + "es"
    if re.search(r"[^aeiou]y$", name):
        return name[:-1] + "ies"
    return name + "s"


def check_name(name: str, what: str, *, in_sql: bool = True) -> None:
    if not NAME_PATTERN.match(name):
        raise SpecError(
            f"{what} {name!r} must be snake_case: lowercase letters, digits and underscores, "
            "starting with a letter"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise SpecError(f"{what} {name!r} is a Python keyword: choose another name")
    if in_sql and name in RESERVED_SQL_WORDS:
        raise SpecError(
            f"{what} {name!r} is a reserved SQL word that would need quoting in every query: "
            "choose another name"
        )
    if len(name) > MAX_IDENTIFIER - 12:
        raise SpecError(f"{what} {name!r} is too long for PostgreSQL's constraint names")


def _positive_int(text: str, what: str, upper: int) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= upper:
        raise SpecError(f"{what} must be a whole number from 1 to {upper} (got {text!r})")
    return int(text)


def _check_default(spec: Field, text: str) -> None:
    if spec.type not in TYPES_WITH_DEFAULTS:
        raise SpecError(
            f"field {spec.name!r}: a default is supported for "
            f"{', '.join(sorted(TYPES_WITH_DEFAULTS))}, not {spec.type}"
        )
    if spec.type == "bool" and text not in ("true", "false"):
        raise SpecError(f"field {spec.name!r}: a bool default is true or false (got {text!r})")
    if spec.type in INT_BOUNDS:
        bound = INT_BOUNDS[spec.type]
        if not re.fullmatch(r"-?\d+", text) or not -bound <= int(text) < bound:
            raise SpecError(f"field {spec.name!r}: {text!r} is not a valid {spec.type} default")
    if spec.type in ("float", "decimal"):
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise SpecError(f"field {spec.name!r}: {text!r} is not a number") from None
        if not number.is_finite():
            raise SpecError(f"field {spec.name!r}: the default must be a finite number")
        if spec.type == "decimal" and spec.precision is not None and spec.scale is not None:
            whole_digits = len(str(abs(int(number)))) if int(number) else 0
            places = max(0, -int(number.as_tuple().exponent))
            if whole_digits > spec.precision - spec.scale or places > spec.scale:
                raise SpecError(
                    f"field {spec.name!r}: {text!r} does not fit "
                    f"decimal({spec.precision},{spec.scale})"
                )
    if spec.type == "str" and spec.length is not None and len(text) > spec.length:
        raise SpecError(f"field {spec.name!r}: the default is longer than {spec.length}")
    if spec.type == "enum" and text not in spec.members:
        raise SpecError(f"field {spec.name!r}: the default {text!r} is not one of {spec.members}")
    if any(character in text for character in "\\\"'\x00\n"):
        raise SpecError(f"field {spec.name!r}: the default must not contain quotes or backslashes")


def parse_field(text: str, *, with_vector: bool) -> Field:
    match = FIELD_PATTERN.match(text)
    if match is None:
        raise SpecError(
            f"cannot read the field {text!r}: write name:type, e.g. title:str(200), "
            "price:decimal(12,2), note:text?, paid:bool=false, email:str(320):unique"
        )
    name, type_, arguments = match["name"], match["type"], match["arguments"]
    # A foreign key's name is its relationship's; its column gets `_id` (order -> order_id).
    check_name(name, "field name", in_sql=type_ != "fk" or name.endswith("_id"))
    if name in RESERVED_FIELD_NAMES:
        raise SpecError(
            f"field name {name!r} is reserved: every generated model has id, created_at, updated_at"
        )
    known = TYPES_WITH_ARGUMENTS | SIMPLE_TYPES
    if type_ not in known:
        raise SpecError(
            f"field {name!r}: unknown type {type_!r}; known: {', '.join(sorted(known))}"
        )
    if type_ in TYPES_WITH_ARGUMENTS and arguments is None:
        example = FIELD_TYPES[type_].example
        raise SpecError(f"field {name!r}: {type_} needs its arguments, e.g. {example}")
    if type_ in SIMPLE_TYPES and arguments is not None:
        raise SpecError(f"field {name!r}: {type_} takes no arguments (got ({arguments}))")
    values: dict[str, object] = {}
    if type_ == "str":
        values["length"] = _positive_int(arguments, f"field {name!r}: the length", MAX_VARCHAR)
    elif type_ == "decimal":
        parts = arguments.split(",")
        if len(parts) != 2:
            raise SpecError(f"field {name!r}: write decimal(precision,scale), e.g. decimal(12,2)")
        precision = _positive_int(parts[0], f"field {name!r}: the precision", MAX_NUMERIC_PRECISION)
        if not parts[1].strip().isdigit() or int(parts[1]) > precision:
            raise SpecError(
                f"field {name!r}: the scale must be from 0 to the precision {precision}"
            )
        values |= {"precision": precision, "scale": int(parts[1])}
    elif type_ == "enum":
        members = tuple(arguments.split("|"))
        for member in members:
            if not NAME_PATTERN.match(member) or keyword.iskeyword(member):
                raise SpecError(
                    f"field {name!r}: enum value {member!r} must be a snake_case word "
                    "(lowercase letters, digits, underscores)"
                )
        if len(set(members)) != len(members):
            raise SpecError(f"field {name!r}: the enum lists a value twice")
        values["members"] = members
    elif type_ == "fk":
        target, _, on_delete = (part.strip() for part in arguments.partition(","))
        check_name(target, f"field {name!r}: the referenced table")
        values["target"] = target
        if on_delete:
            if on_delete not in ON_DELETE:
                raise SpecError(
                    f"field {name!r}: on delete is one of {', '.join(ON_DELETE)} "
                    f"(got {on_delete!r}), e.g. fk(users, cascade)"
                )
            if on_delete == "set null" and match["optional"] is None:
                raise SpecError(f"field {name!r}: set null needs an optional key: fk(...)?")
            values["on_delete"] = on_delete
    elif type_ == "vector":
        if not with_vector:
            raise SpecError(f"field {name!r}: vector needs pgvector, which this project lacks")
        values["dimensions"] = _positive_int(
            arguments, f"field {name!r}: the dimensions", MAX_VECTOR_DIMENSIONS
        )
    modifiers = [modifier for modifier in match["modifiers"].split(":") if modifier]
    for modifier in modifiers:
        if modifier not in ("unique", "index"):
            raise SpecError(f"field {name!r}: unknown modifier {modifier!r}; known: unique, index")
    spec = Field(
        name=name,
        type=type_,
        optional=match["optional"] is not None,
        unique="unique" in modifiers,
        index="index" in modifiers,
        **values,  # type: ignore[arg-type]
    )
    if spec.unique and spec.index:
        raise SpecError(f"field {name!r}: unique already indexes the column; drop :index")
    if (spec.unique or spec.index) and type_ in UNINDEXABLE:
        raise SpecError(
            f"field {name!r}: {type_} columns need an index chosen by hand (GIN, HNSW); "
            "add it to the model and the migration yourself"
        )
    if spec.unique and type_ in LOW_CARDINALITY:
        raise SpecError(
            f"field {name!r}: a unique {type_} column holds one row per value; "
            "use --unique with other fields instead"
        )
    if match["default"] is not None:
        _check_default(spec, match["default"])
        spec = Field(**{**spec.__dict__, "default": match["default"]})
    return spec


def parse_resource(
    name: str,
    field_texts: list[str],
    *,
    unique_together: str | None = None,
    plural: str | None = None,
    existing_tables: frozenset[str] = frozenset(),
    with_vector: bool = False,
    id_type: str = "int",
) -> Resource:
    check_name(name, "resource name", in_sql=False)  # the table is named by the plural
    plural = plural or pluralize(name)
    check_name(plural, "table name (the plural)")
    if plural == name:
        raise SpecError(f"the plural of {name!r} must differ from it: pass --plural")
    if plural in existing_tables:
        raise SpecError(f"a table {plural!r} already exists: {name!r} is already a resource")
    if not field_texts:
        raise SpecError("give at least one field, e.g. title:str(200)")
    fields = tuple(parse_field(text, with_vector=with_vector) for text in field_texts)
    seen: set[str] = set()
    for spec in fields:
        for taken in {spec.name, spec.column, spec.relationship}:
            if taken in seen:
                raise SpecError(f"field {spec.name!r}: the name {taken!r} is used twice")
            seen.add(taken)
        if spec.target is not None and spec.target not in existing_tables:
            raise SpecError(
                f"field {spec.name!r}: no table {spec.target!r} to reference; "
                f"existing: {', '.join(sorted(existing_tables)) or 'none'}"
            )
    together: tuple[str, ...] = ()
    if unique_together is not None:
        by_name = {spec.name: spec for spec in fields} | {spec.column: spec for spec in fields}
        names = [part.strip() for part in unique_together.split(",")]
        if len(names) < 2 or len(set(names)) != len(names):
            raise SpecError("--unique takes two or more different fields, e.g. --unique a,b")
        for part in names:
            if part not in by_name:
                raise SpecError(f"--unique: {part!r} is not one of the fields")
            if by_name[part].type in UNINDEXABLE:
                raise SpecError(f"--unique: {part!r} is a {by_name[part].type} column")
        together = tuple(by_name[part].column for part in names)
        if len(f"uq_{plural}_{'_'.join(together)}") > MAX_IDENTIFIER:
            raise SpecError("--unique: the constraint name would pass PostgreSQL's 63 characters")
    return Resource(
        name=name,
        plural=plural,
        fields=fields,
        unique_together=together,
        id_type=id_type,
        existing_tables=existing_tables,
    )
