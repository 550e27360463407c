from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.main import create_app
from app.metrics import FAILURE_KINDS, count_unavailable


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_request_is_counted_by_its_route_template_and_timed(client: AsyncClient) -> None:
    labels = {"method": "GET", "route": "/users/{user_id}"}
    before = sample("http_requests_total", **labels, status="404")
    timed = sample("http_request_duration_seconds_count", **labels)

    response = await client.get("/users/999999")

    assert response.status_code == 404
    assert sample("http_requests_total", **labels, status="404") == before + 1
    assert sample("http_request_duration_seconds_count", **labels) == timed + 1
    assert sample("http_requests_in_flight") == 0


async def test_unmatched_paths_share_one_label(client: AsyncClient) -> None:
    labels = {"method": "GET", "route": "<unmatched>", "status": "404"}
    before = sample("http_requests_total", **labels)

    for path in ("/nowhere", "/nowhere/else", "/x?y=z"):
        await client.get(path)

    assert sample("http_requests_total", **labels) == before + 3


async def test_metrics_are_served_in_prometheus_text_outside_the_schema(
    client: AsyncClient,
) -> None:
    response = await client.get("/metrics")

    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"http_requests", "db_pool_connections_in_use", "process_cpu_seconds"} <= names
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


async def test_every_failure_kind_is_exported_before_it_happens(client: AsyncClient) -> None:
    await client.get("/metrics")

    for kind in FAILURE_KINDS:
        assert REGISTRY.get_sample_value("db_failures_total", {"kind": kind}) is not None


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("SQLSTATE 53300 (TooManyConnectionsError)", "too_many_connections"),
        ("08006", "unavailable"),
    ],
)
def test_too_many_connections_is_counted_apart_from_an_outage(reason: str, kind: str) -> None:
    before = sample("db_failures_total", kind=kind)

    count_unavailable(reason)

    assert sample("db_failures_total", kind=kind) == before + 1


@pytest.fixture
async def app_without_metrics(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"metrics_enabled": False}))
    async with app.router.lifespan_context(app):
        yield app


async def test_metrics_disabled_serves_no_endpoint_and_counts_nothing(
    app_without_metrics: FastAPI,
) -> None:
    labels = {"method": "GET", "route": "/health/live", "status": "200"}
    before = sample("http_requests_total", **labels)
    transport = ASGITransport(app=app_without_metrics)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/metrics")).status_code == 404

    assert sample("http_requests_total", **labels) == before
