"""What teams expect around a generated service: pre-commit hooks that pass, a valid Renovate
configuration, a CI workflow that GitHub accepts and zizmor passes, Dockerfiles that hadolint
passes, a coverage threshold the suite meets, JSON logs with request ids from a real server, and
team answers kept in a data file."""

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from uv import find_uv_bin

from harness.answers import BASE_ANSWERS, Combination
from harness.commands import ProjectRunner, run
from harness.environments import project_environment, project_python
from harness.faults import stage_for
from harness.paths import CACHE, ROOT
from harness.render import render

RenderedProject = Callable[[Combination], Path]
TOOLS = Path(sys.executable).parent  # the template repository's own tools (check-jsonschema, ...)
# One combination per driver; between them every value of the other code-changing answers.
PER_DRIVER = [
    Combination("asyncpg", "declarative_base_class", False, "rollback"),
    Combination("psycopg", "declarative_base_function", True, "nullpool"),
]
per_driver = pytest.mark.parametrize("combination", PER_DRIVER, ids=lambda c: c.id)
COMMIT_SHA = re.compile(r"^[^@]+@[0-9a-f]{40}$")


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.y*ml"))


def dockerfiles(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*Dockerfile*") if path.is_file())


@per_driver
def test_pre_commit_passes_on_a_fresh_render(
    combination: Combination,
    rendered: RenderedProject,
    tmp_path: Path,
) -> None:
    project = shutil.copytree(rendered(combination), tmp_path / "project")
    run("git", "init", "--quiet", cwd=project)
    run("git", "add", "--all", cwd=project)
    env = pre_commit_environment(project)

    output = run(sys.executable, "-m", "pre_commit", "run", "--all-files", cwd=project, env=env)

    hooks = re.findall(r"^(.+?)\.{3,}(Passed|Failed|Skipped)", output.stdout, re.MULTILINE)
    assert len(hooks) >= 10, output.stdout
    assert {result for _, result in hooks} == {"Passed"}, output.stdout
    assert run("git", "status", "--porcelain", cwd=project).stdout.startswith("A ")
    assert not run("git", "diff", cwd=project).stdout  # no hook changed a file


def test_pre_commit_refuses_what_copier_update_leaves_unresolved(
    rendered: RenderedProject, tmp_path: Path
) -> None:
    project = shutil.copytree(rendered(PER_DRIVER[0]), tmp_path / "project")
    config = project / "app" / "config.py"
    marked = "<<<<<<< before updating\nA = 1\n=======\nA = 2\n>>>>>>> after updating\n"
    config.write_text(config.read_text() + marked)
    run("git", "init", "--quiet", cwd=project)
    run("git", "add", "--all", cwd=project)

    output = run(
        sys.executable, "-m", "pre_commit", "run", "check-merge-conflict", "--all-files",
        cwd=project, env=pre_commit_environment(project), returncode=1,
    )  # fmt: skip

    assert "app/config.py" in output.stdout
    assert "Merge conflict string" in output.stdout


def pre_commit_environment(project: Path) -> dict[str, str]:
    """pre-commit's hook environments cached under .cache/ (one install per CI run); the
    hooks' `uv run` uses the project's test environment as it is, instead of building one."""
    python = project_python(project)
    env = project_environment(python)
    return {
        **env,
        "PATH": f"{env['PATH']}{os.pathsep}{Path(find_uv_bin()).parent}",
        "PRE_COMMIT_HOME": str(CACHE / "pre-commit"),
        "UV_PROJECT_ENVIRONMENT": str(python.parent.parent),
        "UV_NO_SYNC": "1",
    }


def test_renovate_config_is_valid_and_covers_what_the_service_pins(
    rendered: RenderedProject, tmp_path: Path
) -> None:
    config_file = rendered(PER_DRIVER[0]) / "renovate.json"
    check = [TOOLS / "check-jsonschema", "--builtin-schema", "vendor.renovate"]

    run(*check, config_file, cwd=tmp_path)

    config = json.loads(config_file.read_text())
    managers = {"pep621", "dockerfile", "docker-compose", "github-actions", "copier"}
    assert managers <= set(config["enabledManagers"])
    assert config["lockFileMaintenance"]["enabled"] is True  # uv.lock, beyond pyproject's bounds
    misspelt = tmp_path / "renovate.json"
    misspelt.write_text(json.dumps({**config, "enabledManagers": ["uv-lockfile"]}))
    run(*check, misspelt, cwd=tmp_path, returncode=1)  # the check can fail


@pytest.mark.parametrize(
    "answers",
    [{}, {"use_pgvector": True, "python_version": "3.13", "postgres_version": 16}],
    ids=["defaults", "pgvector-py313-pg16"],
)
def test_every_workflow_is_valid_and_passes_zizmor(
    template_source: Path, tmp_path: Path, answers: dict[str, Any]
) -> None:
    project = render(template_source, tmp_path / "project", **answers)
    found = workflows(project)
    assert found

    run(TOOLS / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *found,
        cwd=project)  # fmt: skip
    audit = run(TOOLS / "zizmor", "--offline", *found, cwd=project, returncode=None)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_workflows_are_locked_down_bounded_and_pinned(rendered: RenderedProject) -> None:
    for path in workflows(rendered(PER_DRIVER[1])):
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"] == {"contents": "read"}, path.name
        assert "cancel-in-progress" in workflow["concurrency"], path.name
        for name, job in workflow["jobs"].items():
            assert 0 < job["timeout-minutes"] <= 60, f"{path.name}: job {name}"
            uses = [step["uses"] for step in job["steps"] if "uses" in step]
            assert all(COMMIT_SHA.match(action) for action in uses), uses
    commands = " ".join(
        step.get("run", "")
        for path in workflows(rendered(PER_DRIVER[1]))
        for job in yaml.safe_load(path.read_text())["jobs"].values()
        for step in job["steps"]
    )
    assert "uv sync --locked" in commands
    assert "pre-commit run --all-files" in commands
    assert "--cov" in commands


def test_every_dockerfile_passes_hadolint(rendered: RenderedProject) -> None:
    """Findings of warning level and above fail; info-level style notes do not."""
    for combination in PER_DRIVER:
        project = rendered(combination)
        found = dockerfiles(project)
        assert found
        lint = [TOOLS / "hadolint", "--no-color", "--failure-threshold", "warning", *found]
        result = run(*lint, cwd=project, returncode=None)
        assert result.returncode == 0, result.stdout + result.stderr


@per_driver
def test_the_suite_meets_its_coverage_threshold(
    combination: Combination,
    rendered: RenderedProject,
    run_in_project: ProjectRunner,
    tmp_path: Path,
) -> None:
    project = rendered(combination)
    threshold = re.search(r"^fail_under = (\d+)", (project / "pyproject.toml").read_text(), re.M)
    assert threshold

    # The data file outside the project: other tests read the same rendered project's files.
    data_file = str(tmp_path / ".coverage")
    output = run_in_project(project, "pytest", "-q", "--cov", COVERAGE_FILE=data_file)

    assert f"Required test coverage of {threshold.group(1)}.0% reached" in output


DOCS = ["/docs", "/openapi.json"]
DOCS_IDS = ["docs-1", "docs-2"]


def test_production_logs_are_json_lines_with_request_ids(tmp_path: Path) -> None:
    """A real uvicorn serving a rendered project in production: each request's line read back
    from its log with the id the client sent; the API's docs are not served."""
    with stage_for("asyncpg", tmp_path) as stage:
        with stage.serve("logs", environment="production") as running:
            returned = [
                request(running.base_url, "/users/7", "reads-7"),
                request(running.base_url, "/users?limit=2", "list-1"),
                *(
                    request(running.base_url, path, docs_id)
                    for path, docs_id in zip(DOCS, DOCS_IDS, strict=True)
                ),
            ]
        lines = [json.loads(line) for line in running.log.read_text().splitlines()]

    assert [status for status, _, _ in returned] == [404, 200, 404, 404]
    assert [returned_id for _, returned_id, _ in returned] == ["reads-7", "list-1", *DOCS_IDS]
    assert returned[1][2] == {"items": [], "total": 0, "limit": 2, "offset": 0}
    by_id = {line["request_id"]: line for line in lines if line["logger"] == "app.requests"}
    assert by_id["reads-7"]["path"] == "/users/{user_id}"
    assert (by_id["reads-7"]["method"], by_id["reads-7"]["status"]) == ("GET", 404)
    assert isinstance(by_id["reads-7"]["duration_ms"], float)
    assert by_id["list-1"]["path"] == "/users"
    assert by_id["docs-1"]["path"] == "<unmatched>"


def test_an_error_of_a_request_is_a_json_line_with_its_id(tmp_path: Path) -> None:
    with stage_for("psycopg", tmp_path) as stage:
        with stage.serve("errors", faulty=True, log_format="json") as running:
            body = {"email": "boom@example.com", "name": "B"}
            status, request_id, _ = request(
                running.base_url, "/users-then-fail?fail=true", "boom-1", body
            )
        lines = [json.loads(line) for line in running.log.read_text().splitlines()]

    assert (status, request_id) == (500, "boom-1")
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["request_id"] == "boom-1"
    assert "RuntimeError: the handler fails after writing" in error["exception"]
    (line,) = [line for line in lines if line.get("path") == "/users-then-fail"]
    assert (line["status"], line["request_id"]) == (500, "boom-1")


def request(
    base_url: str, path: str, request_id: str, body: dict[str, Any] | None = None
) -> tuple[int, str, Any]:
    """Status, returned X-Request-ID and JSON body (None when not JSON) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"X-Request-ID": request_id, "Content-Type": "application/json"}
    call = urllib.request.Request(base_url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            status, returned_id, content = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, returned_id, content = error.code, error.headers, error.read()
    try:
        parsed = json.loads(content)
    except ValueError:
        parsed = None
    return status, returned_id["X-Request-ID"], parsed


TEAM_ANSWERS = {
    "python_version": "3.12",
    "db_driver": "psycopg",
    "use_pgvector": True,
    "test_db_strategy": "nullpool",
}


def copy_with_data_file(
    template_source: Path, destination: Path, team_file: Path, returncode: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """The README's command for a team's presets, as a developer types it."""
    return run(
        TOOLS / "copier", "copy", "--defaults", "--data-file", team_file,
        "--data", f"project_name={BASE_ANSWERS['project_name']}",
        template_source, destination,
        cwd=destination.parent, returncode=returncode,
    )  # fmt: skip


def test_a_team_data_file_presets_the_answers(template_source: Path, tmp_path: Path) -> None:
    team_file = tmp_path / "team.yml"
    team_file.write_text(yaml.safe_dump(TEAM_ANSWERS))

    copy_with_data_file(template_source, tmp_path / "orders", team_file)

    answers = yaml.safe_load((tmp_path / "orders" / ".copier-answers.yml").read_text())
    assert {name: answers[name] for name in TEAM_ANSWERS} == TEAM_ANSWERS
    pyproject = (tmp_path / "orders" / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.12"' in pyproject
    assert "psycopg[binary]" in pyproject


def test_a_bad_value_in_a_team_data_file_is_refused(template_source: Path, tmp_path: Path) -> None:
    team_file = tmp_path / "team.yml"
    team_file.write_text(yaml.safe_dump({**TEAM_ANSWERS, "embedding_dimensions": 4096}))

    result = copy_with_data_file(template_source, tmp_path / "orders", team_file, returncode=None)

    assert result.returncode != 0
    assert "embedding_dimensions must be between 2 and 2000" in result.stdout + result.stderr
    assert not (tmp_path / "orders").exists()


def test_the_readme_documents_team_presets() -> None:
    assert "copier copy --data-file team.yml" in (ROOT / "README.md").read_text()
