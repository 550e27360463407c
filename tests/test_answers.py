"""Answers: bad ones are refused clearly and leave nothing behind; good ones shape the output;
none of it needs --trust.

Refusals go through pytest-copie's `copie` fixture, the conventional way to test a Copier
template. Rendering elsewhere uses Copier's API (harness/render.py `render`): copie always passes
`unsafe=True`, so it cannot show that the template needs no --trust, and it writes into a fresh
directory per copy, where the update tests need a git repository they made themselves."""

from pathlib import Path

import pytest
import yaml
from pytest_copie.plugin import Copie

from harness.answers import BASE_ANSWERS, QUESTIONS, choices
from harness.render import render


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_name": "   "}, "project_name must not be empty"),
        ({"project_name": 'Ann "Q" Shop'}, "project_name must not contain double quotes"),
        ({"description": "C:\\path"}, "description must not contain double quotes, backslashes"),
        ({"project_slug": "a" * 33}, "project_slug must be at most 32 characters"),
        ({"project_slug": "Orders Service"}, "project_slug must be kebab-case"),
        ({"project_slug": "orders--service"}, "project_slug must be kebab-case"),
        ({"project_slug": "9orders"}, "project_slug must be kebab-case"),
        ({"use_pgvector": True, "embedding_dimensions": 1}, "between 2 and 2000"),
        ({"use_pgvector": True, "embedding_dimensions": 2001}, "between 2 and 2000"),
        ({"db_driver": "mysqlclient"}, "Invalid choice for 'db_driver'"),
        ({"orm_base_style": "imperative"}, "Invalid choice for 'orm_base_style'"),
        ({"test_db_strategy": "sqlite"}, "Invalid choice for 'test_db_strategy'"),
        ({"postgres_version": 15}, "Invalid choice for 'postgres_version'"),
        ({"python_version": "3.10"}, "Invalid choice for 'python_version'"),
    ],
    ids=[
        "blank-name",
        "quote-in-name",
        "backslash-in-description",
        "slug-too-long",
        "slug-with-space",
        "slug-double-hyphen",
        "slug-leading-digit",
        "dimensions-too-few",
        "dimensions-too-many",
        "unknown-driver",
        "unknown-base-style",
        "unknown-strategy",
        "old-postgres",
        "old-python",
    ],
)
def test_bad_answer_is_refused_clearly_and_leaves_no_project(
    copie: Copie, template_source: Path, answers: dict[str, object], message: str
) -> None:
    result = copie.copy(extra_answers={**BASE_ANSWERS, **answers}, template_dir=template_source)

    assert isinstance(result.exception, ValueError)
    assert message in str(result.exception)
    assert result.exit_code != 0
    assert result.project_dir is None
    (destination,) = copie.test_dir.iterdir()  # made by copie before the copy
    assert list(destination.iterdir()) == []


def test_good_answers_through_copie_are_recorded(copie: Copie, template_source: Path) -> None:
    result = copie.copy(
        extra_answers={**BASE_ANSWERS, "db_driver": "psycopg", "use_pgvector": True},
        template_dir=template_source,
    )

    assert result.exception is None
    assert result.project_dir is not None
    assert (result.project_dir / "app" / "models" / "document.py").is_file()
    assert (result.answers["db_driver"], result.answers["embedding_dimensions"]) == ("psycopg", 384)


def test_every_question_with_free_input_has_a_validator() -> None:
    free_input = [name for name, spec in QUESTIONS.items() if "choices" not in spec]
    unvalidated = [
        name
        for name in free_input
        if QUESTIONS[name]["type"] != "bool" and "validator" not in QUESTIONS[name]
    ]
    assert unvalidated == []


def test_every_question_has_help_and_type() -> None:
    assert [name for name, spec in QUESTIONS.items() if not spec.get("help")] == []
    assert [name for name, spec in QUESTIONS.items() if not spec.get("type")] == []


def test_copy_needs_no_trust(template_source: Path, tmp_path: Path) -> None:
    """render() passes unsafe=False: copier refuses a template with tasks or extensions then.
    (pytest-copie's fixture always passes unsafe=True, so this test cannot use it.)"""
    project = render(template_source, tmp_path / "project")

    assert (project / "app" / "main.py").is_file()


def test_answers_file_records_the_answers_for_updates(
    template_source: Path, tmp_path: Path
) -> None:
    project = render(template_source, tmp_path / "project", db_driver="psycopg", use_pgvector=True)

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["db_driver"] == "psycopg"
    assert answers["use_pgvector"] is True
    assert answers["embedding_dimensions"] == 384
    assert "_src_path" in answers
    assert "db_name" not in answers  # computed values are not answers


def test_slug_and_database_name_derive_from_the_project_name(
    template_source: Path, tmp_path: Path
) -> None:
    project = render(template_source, tmp_path / "project", project_name="Zoë's Orders Shop")

    assert 'name = "zo-s-orders-shop"' in (project / "pyproject.toml").read_text()
    assert "/zo_s_orders_shop" in (project / ".env.example").read_text()


@pytest.mark.parametrize("version", choices("postgres_version"), ids=lambda v: f"pg{v}")
def test_postgres_version_sets_image_and_data_directory(
    template_source: Path, tmp_path: Path, version: int
) -> None:
    project = render(template_source, tmp_path / "project", postgres_version=version)

    compose = yaml.safe_load((project / "compose.yaml").read_text())
    database = compose["services"]["db"]
    assert database["image"] == f"postgres:{version}"
    # PostgreSQL 18 images keep their data one level up, in /var/lib/postgresql.
    data_directory = "/var/lib/postgresql" if version >= 18 else "/var/lib/postgresql/data"
    assert database["volumes"] == [f"pgdata:{data_directory}"]
    assert database["ports"] == ["127.0.0.1:${POSTGRES_PORT:-5432}:5432"]
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    assert workflow["jobs"]["test"]["services"]["postgres"]["image"] == f"postgres:{version}"


def test_pgvector_switches_the_images(template_source: Path, tmp_path: Path) -> None:
    project = render(template_source, tmp_path / "project", use_pgvector=True, postgres_version=17)

    compose = yaml.safe_load((project / "compose.yaml").read_text())
    assert compose["services"]["db"]["image"] == "pgvector/pgvector:pg17"


@pytest.mark.parametrize("version", choices("python_version"))
def test_python_version_reaches_pyproject_dockerfile_and_ci(
    template_source: Path, tmp_path: Path, version: str
) -> None:
    project = render(template_source, tmp_path / "project", python_version=version)

    assert f'requires-python = ">={version}"' in (project / "pyproject.toml").read_text()
    assert (
        f'target-version = "py{version.replace(".", "")}"'
        in (project / "pyproject.toml").read_text()
    )
    assert (project / "Dockerfile").read_text().startswith(f"FROM python:{version}-slim")
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    setup_uv = workflow["jobs"]["test"]["steps"][1]
    assert setup_uv["with"]["python-version"] == version


def test_secrets_stay_out_of_git(template_source: Path, tmp_path: Path) -> None:
    project = render(template_source, tmp_path / "project")

    assert ".env" in (project / ".gitignore").read_text().splitlines()
    assert not (project / ".env").exists()
