"""The checks every generated resource's API passes (`python -m app new resource`).

A generated `tests/api/test_<plural>.py` declares its resource in a class (its path, schemas, a
valid request body, the cases its fields add) and inherits these checks: `ResourceChecks` for
every resource, a mixin for each kind of case it has. Improving a check here improves it for every
resource generated so far, and `copier update` brings the template's improvements to this file."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, ClassVar

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import Base
from tests.support import RowFactory, make_row_factory

JSON_BODY = {"content-type": "application/json"}
MISSING: Any = object()  # marks a field left out of a request body
# Ids no row has, by the type of the key, and ids out of the type (422).
UNKNOWN_IDS = {
    "int": ["999999", "9223372036854775807"],
    "uuid": [
        "00000000-0000-7000-8000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ],
}
INVALID_IDS = {"int": ["0", "9223372036854775808", "abc"], "uuid": ["0", "999999", "abc"]}
OUT_OF_BOUNDS_PAGES = {
    "no-limit": {"limit": 0},
    "limit-too-big": {"limit": 101},
    "negative-offset": {"offset": -1},
    "offset-too-big": {"offset": 2**31},
}
Comparison = Callable[[Any, Any], bool]
FieldCases = tuple[tuple[str, str, Any], ...]  # a case's id, the field, the value it sends


def one_field_changes(cases: FieldCases) -> dict[str, dict[str, Any]]:
    """Each case as a change of one field of a valid body, by the case's id."""
    return {case: {field: value} for case, field, value in cases}


def sent(body: dict[str, Any]) -> str:
    """The body as JSON, without the fields marked MISSING (any JSON Python writes: lone
    surrogates and all)."""
    return json.dumps({key: value for key, value in body.items() if value is not MISSING})


class ResourceChecks:
    path: ClassVar[str]  # /line-items
    id_type: ClassVar[str] = "int"  # or "uuid"
    create_schema: ClassVar[type[BaseModel]]
    read_schema: ClassVar[type[BaseModel]]
    update_schema: ClassVar[type[BaseModel]]
    sort_keys: ClassVar[tuple[str, ...]]
    patched_field: ClassVar[str]  # the field the PATCH checks send alone

    async def payload(self, row_factory: RowFactory, number: int = 1) -> dict[str, Any]:
        """A valid request body, with the rows it references; each `number` (1 to 9) gives
        unique fields other values."""
        raise NotImplementedError

    def parameters(self) -> dict[str, dict[str, Any]]:
        """Each parametrized argument's (or comma-separated arguments') values, by case id, as
        `metafunc.parametrize` takes them: the mixins add theirs."""
        ids = {key: (key, 404) for key in UNKNOWN_IDS[self.id_type]}
        return {
            "resource_id,status": ids | {key: (key, 422) for key in INVALID_IDS[self.id_type]},
            "params": OUT_OF_BOUNDS_PAGES,
            "key": {key: key for key in self.sort_keys},
        }

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        for names, cases in self.parameters().items():
            if set(names.split(",")) <= set(metafunc.fixturenames):
                metafunc.parametrize(names, list(cases.values()), ids=list(cases))

    @pytest.fixture
    async def committing_client(self, committing_app: FastAPI) -> AsyncIterator[AsyncClient]:
        """A client of an application whose requests commit, each on a connection of its own."""
        transport = ASGITransport(app=committing_app)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            yield client

    @pytest.fixture
    def committed_row_factory(self, committing_app: FastAPI) -> RowFactory:
        return make_row_factory(committing_app.state.sessionmaker)

    async def create(
        self, client: AsyncClient, row_factory: RowFactory, number: int = 1
    ) -> dict[str, Any]:
        response = await client.post(self.path, json=await self.payload(row_factory, number))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def assert_stored(self, payload: dict[str, Any], body: dict[str, Any]) -> None:
        """Every field sent is what the response holds, compared as values: a decimal's scale
        and a time zone come back as the database writes them."""
        expected = self.create_schema.model_validate(payload).model_dump()
        stored = self.read_schema.model_validate(body).model_dump(include=set(expected))
        assert stored == expected

    def values_of(self, items: list[dict[str, Any]], column: str) -> list[Any]:
        """A column of listed rows, as Python values (compared as the database compares)."""
        return [self.read_schema.model_validate(item).model_dump()[column] for item in items]

    async def test_create_returns_201_and_stores_every_field(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        payload = await self.payload(row_factory)

        response = await client.post(self.path, json=payload)

        assert response.status_code == 201
        self.assert_stored(payload, response.json())
        fetched = await client.get(f"{self.path}/{response.json()['id']}")
        assert fetched.status_code == 200
        self.assert_stored(payload, fetched.json())

    async def test_an_unknown_or_invalid_id_answers_4xx(
        self, client: AsyncClient, resource_id: str, status: int
    ) -> None:
        response = await client.get(f"{self.path}/{resource_id}")

        assert response.status_code == status

    async def test_update_replaces_every_field(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        created = await self.create(client, row_factory, 1)
        payload = await self.payload(row_factory, 2)

        response = await client.put(f"{self.path}/{created['id']}", json=payload)

        assert response.status_code == 200
        fetched = await client.get(f"{self.path}/{created['id']}")
        self.assert_stored(payload, fetched.json())

    async def test_patch_changes_only_the_fields_sent(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        created = await self.create(client, row_factory, 1)
        field = self.patched_field
        change = {field: (await self.payload(row_factory, 2))[field]}

        response = await client.patch(f"{self.path}/{created['id']}", json=change)

        assert response.status_code == 200
        fetched = await client.get(f"{self.path}/{created['id']}")
        read = self.read_schema
        before = read.model_validate(created).model_dump(exclude={"updated_at"})
        after = read.model_validate(fetched.json()).model_dump(exclude={"updated_at"})
        changes = self.update_schema.model_validate(change).model_dump(exclude_unset=True)
        assert after == before | changes

    async def test_patch_with_nothing_changes_nothing(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        created = await self.create(client, row_factory)

        response = await client.patch(f"{self.path}/{created['id']}", json={})

        assert response.status_code == 200
        assert response.json() == created

    async def test_updated_at_moves_on_every_update(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        created = await self.create(client, row_factory, 1)
        assert created["updated_at"] == created["created_at"]
        payload = await self.payload(row_factory, 2)
        path, field = f"{self.path}/{created['id']}", self.patched_field

        replaced = await client.put(path, json=payload)
        patched = await client.patch(path, json={field: payload[field]})

        moments = [created, replaced.json(), patched.json()]
        instants = [datetime.fromisoformat(moment["updated_at"]) for moment in moments]
        assert instants == sorted(set(instants))
        assert patched.json()["created_at"] == created["created_at"]

    async def test_delete_removes_it(self, client: AsyncClient, row_factory: RowFactory) -> None:
        created = await self.create(client, row_factory)

        response = await client.delete(f"{self.path}/{created['id']}")

        assert response.status_code == 204
        assert (await client.get(f"{self.path}/{created['id']}")).status_code == 404

    async def test_update_patch_or_delete_of_an_unknown_id_answers_404(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        payload = await self.payload(row_factory)
        path = f"{self.path}/{UNKNOWN_IDS[self.id_type][0]}"

        assert (await client.put(path, json=payload)).status_code == 404
        assert (await client.patch(path, json=payload)).status_code == 404
        assert (await client.delete(path)).status_code == 404

    async def test_list_pages_in_id_order(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        created = [await self.create(client, row_factory, number) for number in (1, 2, 3)]

        first_page = await client.get(self.path, params={"limit": 2})
        second_page = await client.get(self.path, params={"limit": 2, "offset": 2})

        pages = [first_page.json(), second_page.json()]
        assert [item["id"] for page in pages for item in page["items"]] == [
            item["id"] for item in created
        ]
        assert [page["total"] for page in pages] == [3, 3]

    async def test_list_refuses_paging_out_of_bounds(
        self, client: AsyncClient, params: dict[str, int]
    ) -> None:
        response = await client.get(self.path, params=params)

        assert response.status_code == 422

    async def test_list_sorts_by_each_indexed_column(
        self, client: AsyncClient, row_factory: RowFactory, key: str
    ) -> None:
        for number in (2, 3, 1):
            await self.create(client, row_factory, number)

        ascending = (await client.get(self.path, params={"sort": key})).json()["items"]
        descending = (await client.get(self.path, params={"sort": f"-{key},id"})).json()["items"]

        assert self.values_of(ascending, key) == sorted(self.values_of(ascending, key))
        assert self.values_of(descending, key) == sorted(
            self.values_of(ascending, key), reverse=True
        )

    async def test_list_refuses_a_sort_key_it_has_no_index_for(self, client: AsyncClient) -> None:
        response = await client.get(self.path, params={"sort": "id,-created_at"})

        assert response.status_code == 422
        message = response.json()["detail"][0]["msg"]
        assert "cannot sort by -created_at" in message
        assert all(key in message for key in self.sort_keys)

    async def test_of_concurrent_deletes_of_one_row_exactly_one_answers_204(
        self, committing_client: AsyncClient, committed_row_factory: RowFactory
    ) -> None:
        for number in range(1, 6):
            created = await self.create(committing_client, committed_row_factory, number)
            path = f"{self.path}/{created['id']}"

            responses = await asyncio.gather(*(committing_client.delete(path) for _ in range(5)))

            assert sorted(response.status_code for response in responses) == [204] + [404] * 4

    async def test_updates_racing_a_delete_answer_200_or_404(
        self, committing_client: AsyncClient, committed_row_factory: RowFactory
    ) -> None:
        for number in range(1, 5):
            created = await self.create(committing_client, committed_row_factory, number)
            payload = await self.payload(committed_row_factory, number + 4)
            path = f"{self.path}/{created['id']}"

            *updated, deleted = await asyncio.gather(
                *(committing_client.put(path, json=payload) for _ in range(3)),
                committing_client.delete(path),
            )

            assert {response.status_code for response in updated} <= {200, 404}
            assert deleted.status_code == 204


class FilterChecks(ResourceChecks):
    # Each filter's query parameter, the column it reads and how it compares with the value.
    filters: ClassVar[tuple[tuple[str, str, Comparison], ...]]

    def parameters(self) -> dict[str, dict[str, Any]]:
        cases = {filter[0]: filter for filter in self.filters}
        return super().parameters() | {"parameter,column,compare": cases}

    async def test_list_filters_on_indexed_columns(
        self,
        client: AsyncClient,
        row_factory: RowFactory,
        parameter: str,
        column: str,
        compare: Comparison,
    ) -> None:
        created = [await self.create(client, row_factory, number) for number in (1, 2, 3)]
        values = self.values_of(created, column)

        response = await client.get(self.path, params={parameter: created[1][column]})

        assert response.status_code == 200
        kept = [
            item["id"]
            for item, value in zip(created, values, strict=True)
            if compare(value, values[1])
        ]
        assert [item["id"] for item in response.json()["items"]] == kept
        assert response.json()["total"] == len(kept)


class InvalidInputChecks(ResourceChecks):
    invalid: ClassVar[FieldCases]  # a value refused

    def parameters(self) -> dict[str, dict[str, Any]]:
        return super().parameters() | {"invalid_changes": one_field_changes(self.invalid)}

    async def test_invalid_input_answers_422(
        self, client: AsyncClient, row_factory: RowFactory, invalid_changes: dict[str, Any]
    ) -> None:
        payload = await self.payload(row_factory) | invalid_changes
        created = await self.create(client, row_factory, 2)

        response = await client.post(self.path, content=sent(payload), headers=JSON_BODY)
        patched = await client.patch(
            f"{self.path}/{created['id']}", content=sent(invalid_changes), headers=JSON_BODY
        )

        assert response.status_code == 422
        assert patched.status_code == (200 if MISSING in invalid_changes.values() else 422)


class EdgeValueChecks(ResourceChecks):
    edges: ClassVar[FieldCases]  # a value at an edge of what the field holds

    def parameters(self) -> dict[str, dict[str, Any]]:
        return super().parameters() | {"edge_changes": one_field_changes(self.edges)}

    async def test_edge_values_are_read_back_as_sent(
        self, client: AsyncClient, row_factory: RowFactory, edge_changes: dict[str, Any]
    ) -> None:
        payload = await self.payload(row_factory) | edge_changes

        response = await client.post(self.path, content=sent(payload), headers=JSON_BODY)

        assert response.status_code == 201, response.text
        fetched = await client.get(f"{self.path}/{response.json()['id']}")
        assert fetched.status_code == 200
        self.assert_stored(payload, fetched.json())
        listed = await client.get(self.path)
        assert listed.status_code == 200
        [stored] = [item for item in listed.json()["items"] if item["id"] == response.json()["id"]]
        self.assert_stored(payload, stored)


class OptionalFieldChecks(ResourceChecks):
    optional: ClassVar[tuple[str, ...]]  # fields a body may leave out

    async def test_optional_fields_may_be_left_out(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        payload = await self.payload(row_factory)
        required = {key: value for key, value in payload.items() if key not in self.optional}

        response = await client.post(self.path, json=required)

        assert response.status_code == 201
        fetched = await client.get(f"{self.path}/{response.json()['id']}")
        self.assert_stored(required, fetched.json())


class UniqueChecks(ResourceChecks):
    async def test_a_duplicate_answers_409(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        payload = await self.payload(row_factory)
        assert (await client.post(self.path, json=payload)).status_code == 201

        response = await client.post(self.path, json=payload)

        assert response.status_code == 409


class ReferenceChecks(ResourceChecks):
    # Each foreign key's column, the table it refers to, the type of its key and its on delete.
    references: ClassVar[tuple[tuple[str, str, str, str], ...]]

    def parameters(self) -> dict[str, dict[str, Any]]:
        unknown = {
            column: (column, UNKNOWN_IDS[key_type][0] if key_type == "uuid" else 999999)
            for column, _, key_type, _ in self.references
        }
        deletes = {
            f"{column}-{rule}": (column, table, rule) for column, table, _, rule in self.references
        }
        return super().parameters() | {"column,unknown": unknown, "column,table,rule": deletes}

    async def test_an_unknown_reference_answers_409(
        self, client: AsyncClient, row_factory: RowFactory, column: str, unknown: object
    ) -> None:
        payload = await self.payload(row_factory) | {column: unknown}

        response = await client.post(self.path, json=payload)

        assert response.status_code == 409

    async def test_deleting_a_referenced_row_does_what_its_key_says(
        self,
        client: AsyncClient,
        session: AsyncSession,
        row_factory: RowFactory,
        column: str,
        table: str,
        rule: str,
    ) -> None:
        created = await self.create(client, row_factory)
        referenced = Base.metadata.tables[table]
        [key] = self.values_of([created], column)
        statement = delete(referenced).where(referenced.c.id == key)

        if rule == "restrict":
            with pytest.raises(IntegrityError, match="foreign key"):
                async with session.begin_nested():
                    await session.execute(statement)
        else:
            await session.execute(statement)
            await session.commit()

        fetched = await client.get(f"{self.path}/{created['id']}")
        if rule == "cascade":
            assert fetched.status_code == 404
        else:
            assert fetched.json()[column] == (None if rule == "set null" else created[column])


class NestedReferenceChecks(ReferenceChecks):
    model: ClassVar[type[Base]]
    nested: ClassVar[tuple[tuple[str, str], ...]]  # relationships the detail nests, their keys

    async def test_the_detail_includes_what_it_references(
        self, client: AsyncClient, row_factory: RowFactory
    ) -> None:
        created = await self.create(client, row_factory)

        fetched = await client.get(f"{self.path}/{created['id']}")

        assert fetched.status_code == 200
        for relationship, column in self.nested:
            assert fetched.json()[relationship]["id"] == created[column]

    async def test_an_unloaded_reference_raises_instead_of_lazy_loading(
        self, client: AsyncClient, session: AsyncSession, row_factory: RowFactory
    ) -> None:
        created = await self.create(client, row_factory)
        session.expunge_all()
        row = await session.get(self.model, created["id"])
        assert row is not None

        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            getattr(row, self.nested[0][0])
