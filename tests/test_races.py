"""Input and races against a real server: the rendered service with a generated resource, run by
uvicorn with production settings (JSON logs) on an embedded PostgreSQL, both drivers, hit by
concurrent HTTP clients as users and attackers would (issue 28)."""

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from harness.answers import DRIVERS
from harness.commands import run
from harness.environments import project_environment
from harness.service import Postgres, Running, migrate, prepare, serve, server_workdir

ROUNDS = 15
ORDER = {"label": "first", "placed_at": "2026-01-01T12:00:00+00:00"}
CHANGED = {"label": "second", "placed_at": "2026-02-01T12:00:00+01:00"}
SECRET = "secret-4242"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with server_workdir("races-") as root:
        server = Postgres(root)
        try:
            yield server
        finally:
            server.close()


@pytest.fixture(scope="module", params=DRIVERS)
def service(
    request: pytest.FixtureRequest,
    postgres: Postgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    driver: str = request.param
    workdir = tmp_path_factory.mktemp(f"races-{driver}")
    project, python = prepare(workdir, db_driver=driver)
    new_order = ["-m", "app", "new", "resource", "order", "label:str(40)", "placed_at:datetime"]
    run(python, *new_order, cwd=project, env=project_environment(python))
    database = f"races_{driver}"
    postgres.create_database(database)
    url = postgres.url(database, driver)
    migrate(project, python, url)
    with serve(
        project, python, workdir / "service.log", database_url=url, environment="production"
    ) as running:
        yield running


def log_lines(service: Running) -> list[str]:
    return service.log.read_text().splitlines()


async def race(base_url: str) -> tuple[set[int], list[list[int]]]:
    """Each round: an order, then 3 PUTs and 3 DELETEs of it at once. The PUTs' statuses, and
    each round's DELETE statuses."""
    put_statuses: set[int] = set()
    delete_statuses = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for _ in range(ROUNDS):
            created = await client.post("/orders", json=ORDER)
            assert created.status_code == 201, created.text
            path = f"/orders/{created.json()['id']}"
            answers = await asyncio.gather(
                *(client.put(path, json=CHANGED) for _ in range(3)),
                *(client.delete(path) for _ in range(3)),
            )
            put_statuses |= {answer.status_code for answer in answers[:3]}
            delete_statuses.append(sorted(answer.status_code for answer in answers[3:]))
    return put_statuses, delete_statuses


def test_writes_racing_on_one_row_answer_404_and_one_delete_wins(service: Running) -> None:
    put_statuses, delete_statuses = asyncio.run(race(service.base_url))

    assert put_statuses <= {200, 404}
    assert delete_statuses == [[204, 404, 404]] * ROUNDS
    for line in log_lines(service):  # warnings included: JSON lines, none an error
        assert json.loads(line)["level"] in ("INFO", "WARNING"), line


@pytest.mark.parametrize(
    "placed_at",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:30:00+01:00"],
    ids=["after-9999-in-utc", "before-year-1-in-utc"],
)
def test_a_datetime_python_cannot_read_back_is_refused_and_lists_keep_working(
    service: Running, placed_at: str
) -> None:
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        created = client.post("/orders", json={"label": "far", "placed_at": placed_at})
        listed = client.get("/orders")

    assert created.status_code == 422
    assert listed.status_code == 200


def test_a_lone_surrogate_is_refused_and_never_logged(service: Running) -> None:
    body = b'{"label": "' + SECRET.encode() + b'\\ud800", "placed_at": "2026-01-01T00:00:00Z"}'
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        response = client.post(
            "/orders", content=body, headers={"content-type": "application/json"}
        )

    assert response.status_code == 422
    assert not [line for line in log_lines(service) if SECRET in line]


def test_a_body_over_the_limit_is_refused_unread(service: Running) -> None:
    body = json.dumps({"label": "x" * 100_000_000, "placed_at": "2026-01-01T00:00:00Z"})
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        response = client.post(
            "/orders", content=body, headers={"content-type": "application/json"}
        )

    assert response.status_code == 413
    assert len(response.content) < 200
