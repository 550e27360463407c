"""The repository itself: the README is the truth, CI runs its command, the code is clean."""

import re
import sys

from harness.answers import COPIER_YML, QUESTIONS
from harness.commands import run
from harness.paths import ROOT

README = (ROOT / "README.md").read_text()


def fenced_commands(section: str) -> list[str]:
    """Shell lines inside the ```sh fences of the README section with this heading."""
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [
        line
        for block in re.findall(r"```sh\n(.*?)```", body, re.DOTALL)
        for line in block.splitlines()
    ]


def test_question_table_lists_exactly_the_questions_of_copier_yml() -> None:
    table = README.split("## The questions\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)

    assert listed == list(QUESTIONS)


def test_question_table_shows_each_default_and_choice() -> None:
    table = README.split("## The questions\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        row.split("|")[1].strip(" `"): row for row in table.splitlines() if row.startswith("| `")
    }

    for name, spec in QUESTIONS.items():
        for choice in spec.get("choices", {}) and (
            spec["choices"].values() if isinstance(spec["choices"], dict) else spec["choices"]
        ):
            assert str(choice) in rows[name], (name, choice)
        if name not in ("project_name", "project_slug"):
            assert str(spec["default"]).lower() in rows[name].lower(), name


def test_ci_runs_exactly_the_readme_test_command() -> None:
    [command] = fenced_commands("Test the template")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()

    assert command in ci_lines


def test_repository_code_is_lint_and_format_clean() -> None:
    ruff = [sys.executable, "-m", "ruff"]
    run(*ruff, "check", "--no-cache", ".", cwd=ROOT)
    run(*ruff, "format", "--no-cache", "--check", ".", cwd=ROOT)


def test_copier_yml_is_safe_and_complete() -> None:
    """No tasks and no Jinja extensions (both would force --trust); the working-tree copy skips
    build litter."""
    assert "_tasks" not in COPIER_YML
    assert "_jinja_extensions" not in COPIER_YML
    assert {"__pycache__", "*.pyc", ".venv", ".pytest_cache"} <= set(COPIER_YML["_exclude"])
