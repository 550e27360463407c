"""The field types, one entry each: adding a type is adding an entry here (and, when it takes
arguments, reading them in spec.py). Each text is a format string over the field's values
(`render.field_values`): `{length}`, `{precision}`, `{scale}`, `{whole}` (digits before the
point), `{dimensions}`, `{enum}` (the enum's class), `{enum_type}`, `{name}`, `{prefix}`,
`{target}`, `{default}`, `{bits}`."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldType:
    python: str  # the column's Python type, in Mapped[] and in the response schema
    column: str  # the SQLAlchemy column type
    request: str  # the request schema's type, with the constraints of the column
    # A valid value, different for each `number` from 1 to 9, in the tests ({number} stays as
    # it is: an f-string's field).
    sample: str
    invalid: dict[str, str] = field(default_factory=dict)  # refused (422), by case
    edges: dict[str, str] = field(default_factory=dict)  # stored and read back as sent
    filter: str | None = None  # list filter: "equal" (?x=), "range" (?x_min=, ?x_max=)
    example: str | None = None  # how its arguments are written; None: it takes none
    default: str | None = None  # a default's Python expression; None: no default
    read: str | None = None  # the response schema's type when it is not `python`
    indexable: bool = True  # json and vector need an index chosen by hand (GIN, HNSW)
    few_values: bool = False  # a unique column would hold one row per value
    null_is_a_value: bool = False  # null is stored as such, not refused

    @property
    def response(self) -> str:
        return self.read or self.python


INT_EDGES = {"smallest": "-(2**{bits})", "largest": "2**{bits} - 1"}
TEXT_INVALID = {"nul": '"\\x00"', "lone-surrogate": '"\\ud800"'}

FIELD_TYPES = {
    "str": FieldType(
        python="str",
        column="String({length})",
        request="Annotated[Text, StringConstraints(max_length={length})]",
        sample='f"{prefix}{number}"{cut}',
        invalid={"too-long": '"x" * ({length} + 1)', **TEXT_INVALID},
        edges={"longest-of-widest-characters": '"\\U0010ffff" * {length}'},
        filter="equal",
        example="str(200)",
        default='"{default}"',
    ),
    "text": FieldType(
        python="str",
        column="Text",
        request="Text",
        sample='f"{name} {number}"',
        invalid=TEXT_INVALID,
        edges={
            "controls-but-nul": '"\\x01\\x1f\\x7f\\x9f"',
            "widest-characters": '"\\U0010ffff\\U0001f600" * 1000',
        },
        filter="equal",
        default='"{default}"',
    ),
    "int": FieldType(
        python="int",
        column="Integer",
        request="Annotated[int, Field(ge=-INT4_MAX - 1, le=INT4_MAX)]",
        sample="number",
        invalid={"too-big": "2**31"},
        edges=INT_EDGES,
        filter="range",
        default="{default}",
    ),
    "bigint": FieldType(
        python="int",
        column="BigInteger",
        request="Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]",
        sample="2**40 + number",
        invalid={"too-big": "2**63"},
        edges=INT_EDGES,
        filter="range",
        default="{default}",
    ),
    "bool": FieldType(
        python="bool",
        column="Boolean",
        request="bool",
        sample="number > 1",
        invalid={"not-a-bool": '"maybe"'},
        filter="equal",
        default="{default_title}",
        few_values=True,
    ),
    "float": FieldType(
        python="float",
        column="Double",
        request="Annotated[float, Field(allow_inf_nan=False)]",
        sample="number + 0.5",
        invalid={"infinite": '"inf"'},
        edges={
            "largest": "1.7976931348623157e308",
            "most-negative": "-1.7976931348623157e308",
            "smallest-positive": "5e-324",
        },
        filter="range",
        default="{default}",
    ),
    "decimal": FieldType(
        python="Decimal",
        column="Numeric({precision}, {scale})",
        request="Annotated[Decimal, Field(max_digits={precision}, decimal_places={scale})]",
        sample="str(Decimal(number).scaleb(-{scale}))",
        invalid={
            "too-many-digits": '"9" * ({whole} + 1)',
            "too-many-places": '"0." + "1" * ({scale} + 1)',
        },
        edges={"largest": '"{largest}"', "most-negative": '"-{largest}"'},
        filter="range",
        example="decimal(12,2)",
        default='Decimal("{default}")',
    ),
    "date": FieldType(
        python="date",
        column="Date",
        request="date",
        sample="date(2026, 1, number).isoformat()",
        invalid={"no-such-day": '"2026-02-30"'},
        edges={"first-day": '"0001-01-01"', "last-day": '"9999-12-31"'},
        filter="range",
    ),
    "datetime": FieldType(
        python="datetime",
        column="DateTime(timezone=True)",
        # A time without a zone is refused (422), and one Python could not read back in UTC.
        request="Instant",
        sample="datetime(2026, 1, number, 12, 30, tzinfo=UTC).isoformat()",
        invalid={
            "no-time-zone": '"2026-01-01T12:30:00"',
            # Instants PostgreSQL stores but Python cannot read back: past 9999 or before 1.
            "after-9999-in-utc": '"9999-12-31T23:59:59-23:59"',
            "before-year-1-in-utc": '"0001-01-01T00:30:00+01:00"',
            # Python's first and last instants, which asyncpg writes as -infinity, infinity.
            "first-python-instant": '"0001-01-01T00:00:00+00:00"',
            "last-python-instant": '"9999-12-31T23:59:59.999999+00:00"',
        },
        edges={
            "first-instant": '"0001-01-01T00:00:00.000001+00:00"',
            "last-instant": '"9999-12-31T23:59:59.999998+00:00"',
            "first-day-far-east": '"0001-01-01T23:59:59+23:59"',
            "last-day-far-west": '"9999-12-31T00:00:00-23:59"',
        },
        filter="range",
    ),
    "uuid": FieldType(
        python="UUID",
        column="Uuid",
        request="UUID",
        sample="str(UUID(int=number))",
        invalid={"not-a-uuid": '"not-a-uuid"'},
        edges={"largest": '"ffffffff-ffff-ffff-ffff-ffffffffffff"'},
        filter="equal",
    ),
    "json": FieldType(
        python="Any",
        # An optional field stores None as SQL NULL, not as the JSON value null.
        column="JSONB(none_as_null={optional})",
        request="JsonValue",
        read="JsonValue",
        sample="dict(number=number)",
        edges={"big-numbers-and-wide-text": 'dict(big=2**70, tiny=5e-324, text="\\U0010ffff")'},
        indexable=False,
        null_is_a_value=True,
    ),
    "enum": FieldType(
        python="{enum}",
        column='Enum({enum}, name="{enum_type}")',
        request="{enum}",
        sample="list({enum})[number % len({enum})].value",
        invalid={"not-a-member": '"NOT-A-MEMBER"'},
        filter="equal",
        example="enum(draft|published)",
        default="{enum}.{default}",
        few_values=True,
    ),
    "vector": FieldType(
        python="list[float]",
        column="Vector({dimensions})",
        request="Annotated[list[Component], Field(min_length={dimensions}, max_length={dimensions})]",
        read="Annotated[list[float], BeforeValidator(as_list)]",
        sample="[number / 4] * {dimensions}",
        invalid={
            "wrong-size": "[0.5] * ({dimensions} + 1)",
            "beyond-float4": "[1e39] * {dimensions}",
        },
        # Values float4 holds exactly and writes in their shortest form (psycopg reads the
        # text), so they read back as sent with either driver.
        edges={"wide-magnitudes": "([1e10, -1e10, 0.0625] * {dimensions})[:{dimensions}]"},
        example="vector(384)",
        indexable=False,
    ),
}
# A foreign key is of the type of the key it refers to: the table's fk entry is the integer one.
KEY_TYPES = {
    "int": FieldType(
        python="int",
        column="BigInteger",  # as the ids it refers to are
        request="Id",
        sample='await row_factory("{target}")',
        invalid={"not-an-id": "0"},
        filter="equal",
        example="fk(users)",
    ),
    "uuid": FieldType(
        python="UUID",
        column="Uuid",
        request="UUID",
        sample='str(await row_factory("{target}"))',  # JSON has no UUID
        invalid={"not-an-id": '"0"'},
        filter="equal",
        example="fk(users)",
    ),
}
FIELD_TYPES["fk"] = KEY_TYPES["int"]
