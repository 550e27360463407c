"""The generated project's Kubernetes manifests (deploy/kubernetes/), proven as far as a machine
without a cluster allows (no node image can be pulled here, so nothing is applied to one).

On every render the manifests could differ in (both drivers, pgvector on and off): every
overlay builds with `kubectl kustomize`; every object validates strictly (unknown fields fail)
against the schemas of pinned Kubernetes versions, offline (`kubernetes-validate`); and the
manifests agree with the project: probe paths and port with the app and the image's command,
the grace period with the preStop pause and uvicorn's graceful timeout, runAsUser with the
Dockerfile's USER, every variable set with a Settings field, the migrations Job's image with the
Deployment's, the connection budget with the max_connections the README assumes (or PgBouncer).
The generated CI runs the same build and validation (its step is run here as it is written).

Then the container the production Deployment describes runs for real under Docker with the
same constraints (read-only root filesystem with its emptyDir paths as tmpfs, its uid, all
capabilities dropped, no-new-privileges, its env, command and memory limit), after its
migrations Job's container did the same: it becomes ready within the startup probe's budget,
serves a write and a read, and stops cleanly on SIGTERM within the grace period. The images are
tests/docker_images.py's, shared with tests/test_docker.py.
"""

import itertools
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from uv import find_uv_bin

from harness.answers import DRIVERS, Combination, choices, default
from harness.commands import run
from harness.environments import project_environment, project_python
from harness.service import free_port
from tests.docker_images import DEADLINE, Image, docker

# The oldest Kubernetes still maintained upstream when this was pinned, and the newest schema
# kubernetes-validate ships; bump both deliberately.
KUBERNETES_VERSIONS = ["1.32.0", "1.37.0"]
MANIFESTS = Path("deploy") / "kubernetes"
# Each overlay that runs the service, and the kustomization holding its release's migrations
# (PgBouncer's overlay migrates through PostgreSQL itself, as the README advises).
MIGRATIONS = {
    "staging": "staging/migrate",
    "production": "production/migrate",
    "production-pgbouncer": "production/migrate",
}
# Variables the manifests may set that are not Settings fields: read by the server itself.
SERVER_VARIABLES = {"WEB_CONCURRENCY"}  # uvicorn's worker processes
# Resources per uvicorn worker, and for the supervisor process plus /tmp (deployment.yaml).
CPU_PER_WORKER_MILLICORES = 250
MEMORY_REQUEST_PER_WORKER_MIB = 128
MEMORY_LIMIT_PER_WORKER_MIB = 192
MEMORY_BASE_MIB = 128

RENDERS = [
    Combination(
        db_driver=driver,
        orm_base_style=default("orm_base_style"),
        use_pgvector=pgvector,
        test_db_strategy=default("test_db_strategy"),
    )
    for driver, pgvector in itertools.product(choices("db_driver"), choices("use_pgvector"))
]


def render_id(combination: Combination) -> str:
    return f"{combination.db_driver}-{'pgvector' if combination.use_pgvector else 'novector'}"


# ─── Reading the manifests and the project ──────────────────────────────────────────────────
def kustomize(directory: Path) -> list[dict[str, Any]]:
    built = run("kubectl", "kustomize", directory, cwd=directory).stdout
    return [item for item in yaml.safe_load_all(built) if item]


def overlays(project: Path) -> list[str]:
    """Every kustomization under deploy/kubernetes/overlays, as a path relative to it."""
    root = project / MANIFESTS / "overlays"
    return sorted(str(path.parent.relative_to(root)) for path in root.rglob("kustomization.yaml"))


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        item
        for item in objects
        if item["kind"] == kind and (name is None or item["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[o['kind'] for o in objects]}"
    return found[0]


def pod_templates(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in objects:
        if item["kind"] in ("Deployment", "Job"):
            yield f"{item['kind']}/{item['metadata']['name']}", item["spec"]["template"]["spec"]


def api_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployments = [
        item
        for item in objects
        if item["kind"] == "Deployment"
        and item["metadata"]["labels"]["app.kubernetes.io/component"] == "api"
    ]
    assert len(deployments) == 1
    return deployments[0]


def container(pod: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod["containers"]
    return only


def literal_env(spec: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in spec.get("env", []) if "value" in item}


def mebibytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def image_command(project: Path) -> list[str]:
    (line,) = re.findall(r"^CMD (\[.*\])$", (project / "Dockerfile").read_text(), re.MULTILINE)
    return json.loads(line)


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def image_user(project: Path) -> tuple[int, int]:
    (uid, gid) = re.findall(r"^USER (\d+):(\d+)$", (project / "Dockerfile").read_text(), re.M)[0]
    return int(uid), int(gid)


def readme_connections(project: Path) -> int:
    """The connections the README's budget example leaves to the service's processes."""
    readme = (project / "README.md").read_text()
    match = re.search(r"`max_connections = (\d+)` and (\d+) kept for others leave (\d+)", readme)
    assert match, "the README's connection budget example is gone"
    return int(match[3])


def pgbouncer_settings(project: Path, overlay: str) -> dict[str, str]:
    ini = (project / MANIFESTS / "overlays" / overlay / "pgbouncer.ini").read_text()
    return dict(re.findall(r"^(\w+) = (.*)$", ini, re.MULTILINE))


@dataclass(frozen=True)
class AppFacts:
    routes: frozenset[str]  # the paths of the API's schema
    settings: frozenset[str]


APP_FACTS = """\
import json
from app.config import Settings
from app.main import create_app
print(json.dumps({
    "routes": sorted(create_app().openapi()["paths"]),
    "settings": sorted(name.upper() for name in Settings.model_fields),
}))
"""


# ─── Fixtures ───────────────────────────────────────────────────────────────────────────────
@pytest.fixture(scope="module", params=RENDERS, ids=render_id)
def project(request: pytest.FixtureRequest, rendered: Callable[[Combination], Path]) -> Path:
    return rendered(request.param)


@pytest.fixture(scope="module")
def builds(project: Path) -> dict[str, list[dict[str, Any]]]:
    """`kubectl kustomize` of every overlay: overlay -> its objects."""
    return {
        overlay: kustomize(project / MANIFESTS / "overlays" / overlay)
        for overlay in overlays(project)
    }


@pytest.fixture(scope="module")
def app_facts(project: Path) -> AppFacts:
    python = project_python(project)
    output = run(python, "-c", APP_FACTS, cwd=project, env=project_environment(python)).stdout
    facts = json.loads(output.splitlines()[-1])
    return AppFacts(frozenset(facts["routes"]), frozenset(facts["settings"]))


# ─── Static proof ───────────────────────────────────────────────────────────────────────────
def test_every_overlay_builds_with_kubectl_kustomize(
    project: Path, builds: dict[str, list[dict[str, Any]]]
) -> None:
    assert set(builds) == {*MIGRATIONS, *MIGRATIONS.values()}
    for overlay in MIGRATIONS:
        kinds = {item["kind"] for item in builds[overlay]}
        assert {
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
        } <= kinds, overlay
    for overlay in set(MIGRATIONS.values()):
        assert {item["kind"] for item in builds[overlay]} == {"Job", "NetworkPolicy"}
    print(
        "\n[kubernetes] production:",
        [f"{item['kind']}/{item['metadata']['name']}" for item in builds["production"]],
    )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_strictly_against_the_pinned_schema(
    builds: dict[str, list[dict[str, Any]]], version: str
) -> None:
    validated = 0
    for overlay, objects in builds.items():
        for item in objects:
            try:
                kubernetes_validate.validate(item, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{overlay}: {item['kind']}/{item['metadata']['name']}: {error}")
            validated += 1
    print(f"\n[kubernetes] {validated} objects valid against {version} (strict)")


def test_strict_validation_rejects_a_field_kubernetes_does_not_know(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = json.loads(json.dumps(api_deployment(builds["production"])))
    container(deployment["spec"]["template"]["spec"])["readOnlyRootFileSystem"] = True  # a typo

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_pods_run_as_the_images_user_without_privileges(
    project: Path, builds: dict[str, list[dict[str, Any]]]
) -> None:
    uid, gid = image_user(project)
    for overlay, objects in builds.items():
        for name, pod in pod_templates(objects):
            where = f"{overlay}: {name}"
            assert pod["automountServiceAccountToken"] is False, where
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
            spec = container(pod)
            assert spec["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, where
            if "pgbouncer" not in name:  # PgBouncer's image has a user of its own
                assert (
                    pod["securityContext"]["runAsUser"],
                    pod["securityContext"]["runAsGroup"],
                ) == (uid, gid), where
            # Every writable path is an emptyDir.
            volumes = {volume["name"]: volume for volume in pod["volumes"]}
            for mount in spec["volumeMounts"]:
                volume = volumes[mount["name"]]
                assert "emptyDir" in volume or mount.get("readOnly") or "configMap" in volume, where


def test_database_urls_come_from_a_secret_never_a_literal(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay, objects in builds.items():
        for name, pod in pod_templates(objects):
            for variable in container(pod).get("env", []):
                if variable["name"].startswith("DATABASE_"):
                    assert "value" not in variable, f"{overlay}: {name}: {variable['name']}"
                    assert variable["valueFrom"]["secretKeyRef"]["name"].endswith("-database")


def test_probes_and_port_are_the_apps_and_the_images(
    project: Path, builds: dict[str, list[dict[str, Any]]], app_facts: AppFacts
) -> None:
    command = image_command(project)
    port = int(option(command, "--port"))
    for overlay in MIGRATIONS:
        objects = builds[overlay]
        deployment = api_deployment(objects)
        pod = deployment["spec"]["template"]
        spec = container(pod["spec"])
        assert "command" not in spec, "the image's CMD is what runs"
        assert "args" not in spec
        (declared,) = spec["ports"]
        assert declared["containerPort"] == port
        probes = {
            kind: spec[kind]["httpGet"]
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert {probe["port"] for probe in probes.values()} == {declared["name"]}
        assert probes["startupProbe"]["path"] == probes["livenessProbe"]["path"] == "/health/live"
        assert probes["readinessProbe"]["path"] == "/health/ready"
        assert {probe["path"] for probe in probes.values()} <= app_facts.routes
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == port
        service = find(objects, "Service", deployment["metadata"]["name"])
        assert service["spec"]["ports"][0]["targetPort"] == declared["name"]
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_grace_period_exceeds_the_pause_plus_the_graceful_timeout(
    project: Path, builds: dict[str, list[dict[str, Any]]]
) -> None:
    graceful = int(option(image_command(project), "--timeout-graceful-shutdown"))
    for overlay in MIGRATIONS:
        pod = api_deployment(builds[overlay])["spec"]["template"]["spec"]
        pause = container(pod)["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] > pause + graceful, overlay


def test_every_variable_set_is_a_setting_and_validates(
    project: Path, builds: dict[str, list[dict[str, Any]]], app_facts: AppFacts
) -> None:
    python = project_python(project)
    secret = "postgresql://app:a-real-password@postgres:5432/orders_service"
    for overlay, objects in builds.items():
        for name, pod in pod_templates(objects):
            if "pgbouncer" in name:
                continue
            spec = container(pod)
            names = {variable["name"] for variable in spec.get("env", [])}
            assert names <= app_facts.settings | SERVER_VARIABLES, (
                f"{overlay}: {name}: not settings: {names - app_facts.settings}"
            )
            values = {variable: secret for variable in names if variable.startswith("DATABASE_")}
            run(
                python,
                "-c",
                "from app.config import Settings; Settings()",
                cwd=project,
                env=project_environment(python, **literal_env(spec), **values),
            )


def test_migrations_run_with_the_image_and_namespace_of_the_release(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay, migrations in MIGRATIONS.items():
        deployment = api_deployment(builds[overlay])
        job = find(builds[migrations], "Job")
        assert (
            container(job["spec"]["template"]["spec"])["image"]
            == container(deployment["spec"]["template"]["spec"])["image"]
        ), overlay
        assert job["metadata"]["namespace"] == deployment["metadata"]["namespace"], overlay
        assert container(job["spec"]["template"]["spec"])["command"] == [
            "alembic",
            "upgrade",
            "head",
        ]


def connections_per_pod(spec: dict[str, Any], settings_defaults: dict[str, int]) -> int:
    """What `python -m app check` prints per pod: WEB_CONCURRENCY x (pool + overflow)."""
    env = literal_env(spec)
    pool = int(env.get("DB_POOL_SIZE", settings_defaults["DB_POOL_SIZE"]))
    overflow = int(env.get("DB_MAX_OVERFLOW", settings_defaults["DB_MAX_OVERFLOW"]))
    return int(env.get("WEB_CONCURRENCY", "1")) * (pool + overflow)


def most_pods(deployment: dict[str, Any], objects: list[dict[str, Any]]) -> int:
    """Pods at the most: the autoscaler's maximum (or replicas) plus a rollout's surge."""
    name = deployment["metadata"]["name"]
    autoscalers = [
        item
        for item in objects
        if item["kind"] == "HorizontalPodAutoscaler"
        and item["spec"]["scaleTargetRef"]["name"] == name
    ]
    top = autoscalers[0]["spec"]["maxReplicas"] if autoscalers else deployment["spec"]["replicas"]
    return top + deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]


SETTINGS_DEFAULTS = {"DB_POOL_SIZE": 5, "DB_MAX_OVERFLOW": 10}


def test_connection_budget_fits_max_connections_or_goes_through_pgbouncer(
    project: Path, builds: dict[str, list[dict[str, Any]]]
) -> None:
    allowed = readme_connections(project)
    for overlay in MIGRATIONS:
        objects = builds[overlay]
        deployment = api_deployment(objects)
        spec = container(deployment["spec"]["template"]["spec"])
        clients = most_pods(deployment, objects) * connections_per_pod(spec, SETTINGS_DEFAULTS)
        budget = f"{overlay}: {clients} client connections"
        if literal_env(spec).get("DB_PGBOUNCER") == "true":
            bouncer = find(objects, "Deployment", f"{deployment['metadata']['name']}-pgbouncer")
            settings = pgbouncer_settings(project, overlay)
            assert settings["pool_mode"] == "transaction"
            assert clients <= int(settings["max_client_conn"]), budget
            servers = most_pods(bouncer, objects) * int(settings["default_pool_size"])
            assert servers <= allowed, f"{overlay}: PgBouncer opens {servers} of {allowed}"
            print(f"\n[kubernetes] {budget} -> PgBouncer -> {servers} of {allowed}")
        else:
            assert clients <= allowed, f"{budget}, the README's server allows {allowed}"
            print(f"\n[kubernetes] {budget} of {allowed}")


def test_resources_grow_with_web_concurrency(builds: dict[str, list[dict[str, Any]]]) -> None:
    for overlay in MIGRATIONS:
        spec = container(api_deployment(builds[overlay])["spec"]["template"]["spec"])
        workers = int(literal_env(spec)["WEB_CONCURRENCY"])
        resources = spec["resources"]
        assert millicores(resources["requests"]["cpu"]) == workers * CPU_PER_WORKER_MILLICORES
        assert mebibytes(resources["requests"]["memory"]) == (
            workers * MEMORY_REQUEST_PER_WORKER_MIB + MEMORY_BASE_MIB
        )
        assert mebibytes(resources["limits"]["memory"]) == (
            workers * MEMORY_LIMIT_PER_WORKER_MIB + MEMORY_BASE_MIB
        )


def test_network_policies_let_in_the_app_port_and_out_only_the_database_and_dns(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay, objects in builds.items():
        for policy in (item for item in objects if item["kind"] == "NetworkPolicy"):
            where = f"{overlay}: {policy['metadata']['name']}"
            selected = policy["spec"]["podSelector"]["matchLabels"]
            pods = [
                pod
                for item in objects
                if item["kind"] in ("Deployment", "Job")
                and item["spec"]["template"]["metadata"]["labels"] == selected
                for pod in [item["spec"]["template"]["spec"]]
            ]
            assert len(pods) == 1, where
            assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}, where
            own_ports = {port["name"] for port in container(pods[0]).get("ports", [])}
            for rule in policy["spec"].get("ingress", []):
                assert {port["port"] for port in rule["ports"]} <= own_ports, where
            egress = {
                (port["port"], port["protocol"])
                for rule in policy["spec"]["egress"]
                for port in rule["ports"]
            }
            assert egress in (
                {(5432, "TCP"), (53, "UDP"), (53, "TCP")},
                {(6432, "TCP"), (53, "UDP"), (53, "TCP")},
            ), where


def test_renovate_updates_every_image_the_manifests_run(
    project: Path, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """Renovate's kustomize manager reads the `images:` of each kustomization.yaml: every image
    a pod runs is one of those, with a tag."""
    renovate = json.loads((project / "renovate.json").read_text())
    assert "kustomize" in renovate["enabledManagers"]
    for overlay, objects in builds.items():
        kustomization = yaml.safe_load(
            (project / MANIFESTS / "overlays" / overlay / "kustomization.yaml").read_text()
        )
        listed = {f"{image['newName']}:{image['newTag']}" for image in kustomization["images"]}
        for name, pod in pod_templates(objects):
            assert container(pod)["image"] in listed, f"{overlay}: {name}"


def test_generated_ci_builds_and_validates_every_overlay_as_here(
    project: Path, builds: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    (step,) = [
        step
        for step in workflow["jobs"]["kubernetes"]["steps"]
        if "kubectl kustomize" in step.get("run", "")
    ]
    for version in KUBERNETES_VERSIONS:
        assert f"-k {version}" in step["run"]
    assert "--strict" in step["run"]
    uv = Path(find_uv_bin())
    env = project_environment(uv, RUNNER_TEMP=tmp_path)

    result = run("bash", "-euo", "pipefail", "-c", step["run"], cwd=project, env=env)

    validated = result.stdout.count("passed for resource")
    print(f"\n[kubernetes] the generated CI's step: {validated} objects passed")
    assert validated == sum(map(len, builds.values())) * len(KUBERNETES_VERSIONS)


# ─── The Deployment's container, run under Docker with the same constraints ─────────────────
# Every key of a container spec is translated to `docker run` or checked by the test itself
# (the probes, the preStop pause); a key not listed fails the run, so the manifests cannot grow a
# setting this test silently ignores.
TRANSLATED = {
    "name",
    "image",
    "command",
    "ports",
    "env",
    "resources",
    "securityContext",
    "volumeMounts",
    "startupProbe",
    "livenessProbe",
    "readinessProbe",
    "lifecycle",
}
CONTAINER_PORT = 8000


def docker_run_options(
    pod: dict[str, Any], secret: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """`docker run` options for the pod's container, and the environment they take values from
    (`--env NAME` reads the value from docker's environment: no secret on a command line)."""
    spec = container(pod)
    assert set(spec) <= TRANSLATED, f"translate {sorted(set(spec) - TRANSLATED)} here"
    context = {**pod["securityContext"], **spec["securityContext"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}  # Docker's default profile
    options = ["--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
    if context["readOnlyRootFilesystem"]:
        options.append("--read-only")
    if context["allowPrivilegeEscalation"] is False:
        options += ["--security-opt", "no-new-privileges"]
    for capability in context["capabilities"]["drop"]:
        options += ["--cap-drop", capability]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in spec["volumeMounts"]:
        empty_dir = volumes[mount["name"]]["emptyDir"]  # the only kind of volume here
        size = f",size={mebibytes(empty_dir['sizeLimit'])}m" if "sizeLimit" in empty_dir else ""
        # An emptyDir is writable by any uid and allows exec; Docker's tmpfs defaults differ.
        options += ["--tmpfs", f"{mount['mountPath']}:rw,exec,mode=1777{size}"]
    if limit := spec["resources"].get("limits", {}).get("memory"):
        options += ["--memory", f"{mebibytes(limit)}m"]
    environment: dict[str, str] = {}
    for variable in spec.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
            continue
        reference = variable["valueFrom"]["secretKeyRef"]
        if reference["key"] in secret:
            environment[variable["name"]] = secret[reference["key"]]
        else:
            assert reference.get("optional"), f"the Secret has no {reference['key']}"
    for name in environment:
        options += ["--env", name]
    return options, environment


def get(port: int, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any, float]:
    """Status, parsed body (or text) and seconds taken, of a request to the container."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    except (urllib.error.URLError, ConnectionError) as error:
        return 0, str(error), time.monotonic() - started
    try:
        parsed: Any = json.loads(payload or b"null")
    except ValueError:
        parsed = payload.decode()
    return status, parsed, time.monotonic() - started


@dataclass
class PodRun:
    """The production overlay's migrations Job and Deployment containers, run for a driver."""

    image: Image
    deployment: dict[str, Any]
    job: dict[str, Any]
    name: str
    port: int
    password: str
    timings: dict[str, float]

    @property
    def pod(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def spec(self) -> dict[str, Any]:
        return container(self.pod)

    def logs(self, suffix: str = "api") -> str:
        result = run("docker", "logs", f"{self.name}-{suffix}", cwd=Path.cwd(), returncode=None)
        return result.stdout + result.stderr


def wait_for_postgres(name: str, database: str) -> None:
    deadline = time.monotonic() + DEADLINE
    probe = [
        "exec",
        name,
        "psql",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        database,
        "-Atqc",
        "select 1",
    ]
    while docker(*probe, returncode=None) != "1":
        assert time.monotonic() < deadline, docker("logs", name, returncode=None)
        time.sleep(0.5)


@pytest.fixture(scope="module", params=DRIVERS)
def pod_run(request: pytest.FixtureRequest, images: dict[str, Image]) -> Iterator[PodRun]:
    """PostgreSQL on a network of its own; the Job's container to completion; the Deployment's
    container started and live within its startup probe's budget."""
    image = images[request.param]
    overlays_root = image.project / MANIFESTS / "overlays"
    deployment = api_deployment(kustomize(overlays_root / "production"))
    job = find(kustomize(overlays_root / MIGRATIONS["production"]), "Job")
    compose = yaml.safe_load((image.project / "compose.yaml").read_text())
    database = compose["services"]["db"]["environment"]["POSTGRES_DB"]
    name = f"k8s-{image.driver}-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:16]}"
    secret = {"DATABASE_URL": f"postgresql://postgres:{password}@postgres:5432/{database}"}
    pod = PodRun(image, deployment, job, name, free_port(), password, {})
    docker("network", "create", name)
    try:
        docker("run", "--detach", "--name", f"{name}-postgres", "--network", name,
               "--network-alias", "postgres", "--env", "POSTGRES_PASSWORD",
               "--env", f"POSTGRES_DB={database}", compose["services"]["db"]["image"],
               POSTGRES_PASSWORD=password)  # fmt: skip
        wait_for_postgres(f"{name}-postgres", database)

        job_pod = job["spec"]["template"]["spec"]
        options, environment = docker_run_options(job_pod, secret)
        started = time.monotonic()
        docker("run", "--name", f"{name}-migrate", "--network", name, *options, image.tag,
               *container(job_pod)["command"], **environment)  # fmt: skip
        pod.timings["migrations Job container"] = time.monotonic() - started

        options, environment = docker_run_options(pod.pod, secret)
        grace = pod.pod["terminationGracePeriodSeconds"]
        started = time.monotonic()
        docker("run", "--detach", "--name", f"{name}-api", "--network", name, *options,
               "--publish", f"127.0.0.1:{pod.port}:{CONTAINER_PORT}", "--stop-timeout",
               str(grace), image.tag, **environment)  # fmt: skip
        startup = pod.spec["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        while get(pod.port, startup["httpGet"]["path"], timeout=1)[0] != 200:
            assert time.monotonic() - started < budget, f"not live in {budget} s:\n{pod.logs()}"
            time.sleep(0.2)
        pod.timings["live (startup probe passes)"] = time.monotonic() - started
        yield pod
    finally:
        print(f"\n[kubernetes] {image.driver}: {pod.timings}")
        for suffix in ("api", "migrate", "postgres"):
            docker("rm", "--force", "--volumes", f"{name}-{suffix}", returncode=None)
        docker("network", "rm", name, returncode=None)


# With tests/test_docker.py on one xdist worker: the images are built once per run.
DOCKER = pytest.mark.xdist_group("docker")


@DOCKER
def test_migrations_job_container_runs_read_only_to_head(pod_run: PodRun) -> None:
    logs = pod_run.logs("migrate")
    assert "Running upgrade" in logs, logs
    inspected = json.loads(docker("inspect", f"{pod_run.name}-migrate"))[0]
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    assert inspected["State"]["ExitCode"] == 0


@DOCKER
def test_container_runs_with_the_constraints_of_the_manifest(pod_run: PodRun) -> None:
    name = f"{pod_run.name}-api"
    host = json.loads(docker("inspect", name))[0]["HostConfig"]
    mounts = {mount["mountPath"] for mount in pod_run.spec["volumeMounts"]}
    identity = docker("exec", name, "python", "-c", "import os; print(os.getuid(), os.getgid())")
    capabilities = docker("exec", name, "grep", "^CapEff", "/proc/1/status").split()[1]
    no_new_privileges = docker("exec", name, "grep", "^NoNewPrivs", "/proc/1/status").split()[1]
    write = run("docker", "exec", name, "python", "-c", "open('/app/written', 'w')",
                cwd=Path.cwd(), returncode=1)  # fmt: skip
    writable = [
        docker("exec", name, "python", "-c",
               f"import tempfile; print(tempfile.mkstemp(dir={path!r})[1])")
        for path in sorted(mounts)
    ]  # fmt: skip

    context = pod_run.pod["securityContext"]
    assert identity == f"{context['runAsUser']} {context['runAsGroup']}"
    assert capabilities == "0000000000000000"
    assert no_new_privileges == "1"
    assert "Read-only file system" in write.stderr
    assert all(path for path in writable), writable
    assert set(host["Tmpfs"]) == mounts
    assert host["ReadonlyRootfs"] is True


@DOCKER
def test_the_image_writes_only_where_an_emptydir_is_mounted(pod_run: PodRun) -> None:
    """A directory the image names for writing (the metrics of several workers, ...) is one
    the manifests mount an emptyDir on."""
    environment = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Env}}", pod_run.image.tag)
    )
    directories = [entry.split("=", 1)[1] for entry in environment
                   if entry.split("=", 1)[0].endswith("_DIR")]  # fmt: skip
    mounts = [mount["mountPath"] for mount in pod_run.spec["volumeMounts"]]
    for directory in directories:
        assert any(Path(directory).is_relative_to(mount) for mount in mounts), directory


@DOCKER
def test_probes_answer_within_their_timeouts_and_a_write_is_read_back(pod_run: PodRun) -> None:
    for kind in ("livenessProbe", "readinessProbe"):
        probe = pod_run.spec[kind]
        status, body, seconds = get(pod_run.port, probe["httpGet"]["path"])
        assert status == 200, (kind, body)
        assert seconds < probe["timeoutSeconds"], kind

    email = f"k8s-{pod_run.image.driver}@example.com"
    status, created, _ = get(pod_run.port, "/users", {"email": email, "name": "Kubernetes"})
    assert status == 201, created
    status, read, _ = get(pod_run.port, f"/users/{created['id']}")
    assert status == 200, read
    assert read["email"] == email


@DOCKER
def test_scrape_annotation_points_at_the_metrics(pod_run: PodRun) -> None:
    annotations = pod_run.deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == CONTAINER_PORT  # published as pod_run.port
    status, body, _ = get(pod_run.port, annotations["prometheus.io/path"])

    assert status == 200, body
    assert "# TYPE" in body


@DOCKER
def test_workers_and_budget_are_what_app_check_prints(pod_run: PodRun) -> None:
    workers = int(literal_env(pod_run.spec)["WEB_CONCURRENCY"])
    check = run("docker", "exec", f"{pod_run.name}-api", "python", "-m", "app", "check",
                cwd=Path.cwd(), returncode=None)  # fmt: skip
    budget = re.search(
        r"(\d+) process\(es\) \(WEB_CONCURRENCY\) x \((\d+) pool \+ (\d+) overflow\) = (\d+) "
        r"connections; the server allows (\d+) \(max_connections (\d+)",
        check.stdout,
    )
    print(f"\n[kubernetes] {pod_run.image.driver}: {check.stdout.strip()}")

    assert check.returncode == 0, check.stdout + check.stderr  # reachable, at head, fits
    assert budget, check.stdout
    processes, _, _, per_pod, _, max_connections = map(int, budget.groups())
    assert processes == workers
    assert per_pod == connections_per_pod(pod_run.spec, SETTINGS_DEFAULTS)
    readme = (pod_run.image.project / "README.md").read_text()
    assert f"`max_connections = {max_connections}`" in readme  # the server the README assumes
    started = set(re.findall(r"Started server process \[(\d+)\]", pod_run.logs()))
    assert len(started) == workers


@DOCKER
def test_memory_stays_within_the_request(pod_run: PodRun) -> None:
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", f"{pod_run.name}-api")
    used, limit = (float(part.strip().removesuffix("MiB")) for part in usage.split("/"))
    print(f"\n[kubernetes] {pod_run.image.driver}: memory {usage}")

    assert limit == mebibytes(pod_run.spec["resources"]["limits"]["memory"])
    assert used < mebibytes(pod_run.spec["resources"]["requests"]["memory"])


@DOCKER
def test_sigterm_after_the_pause_stops_cleanly_within_the_grace_period(pod_run: PodRun) -> None:
    """What the kubelet does: the preStop pause (the pod still serves), then SIGTERM."""
    name = f"{pod_run.name}-api"
    pause = pod_run.spec["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = pod_run.pod["terminationGracePeriodSeconds"]
    started = time.monotonic()
    while time.monotonic() - started < pause:
        assert get(pod_run.port, "/health/live")[0] == 200  # endpoints go, the pod still serves
        time.sleep(0.5)

    docker("kill", "--signal", "SIGTERM", name)
    exit_code = int(docker("wait", name, timeout=grace))
    stopped = time.monotonic() - started
    pod_run.timings["preStop pause + SIGTERM to exit"] = stopped

    assert exit_code == 0, pod_run.logs()
    assert stopped < grace
    assert "Finished server process" in pod_run.logs()
