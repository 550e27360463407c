"""The repository itself: the README and the docs agree with copier.yml, the docs build strict, CI
runs the README's command, the code is clean."""

import os
import re
import sys
from pathlib import Path

from harness.answers import COPIER_YML, QUESTIONS, choices
from harness.commands import run
from harness.paths import ROOT

README = (ROOT / "README.md").read_text()
QUESTIONS_PAGE = (ROOT / "docs" / "questions.md").read_text()
README_MOST_LINES = 150


def section(text: str, heading: str) -> str:
    """The body of the `## heading` section of a Markdown text."""
    return text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def fenced_commands(heading: str) -> list[str]:
    """Shell lines inside the ```sh fences of the README section with this heading."""
    return [
        line
        for block in re.findall(r"```sh\n(.*?)```", section(README, heading), re.DOTALL)
        for line in block.splitlines()
    ]


def question_rows() -> dict[str, str]:
    """The question table of docs/questions.md, row by question name, in its order."""
    return {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| `(\w+)` \|.*$", QUESTIONS_PAGE, re.MULTILINE)
    }


def test_question_table_lists_exactly_the_questions_of_copier_yml() -> None:
    assert list(question_rows()) == list(QUESTIONS)


def test_question_table_shows_each_default_and_choice() -> None:
    rows = question_rows()

    for name, spec in QUESTIONS.items():
        if "choices" in spec:
            for choice in choices(name):
                assert str(choice) in rows[name], (name, choice)
        if name not in ("project_name", "project_slug"):
            assert str(spec["default"]).lower() in rows[name].lower(), name


def test_readme_names_every_question() -> None:
    summary = section(README, "The questions")

    assert [name for name in QUESTIONS if f"`{name}`" not in summary] == []


def test_readme_stays_the_first_five_minutes() -> None:
    assert len(README.splitlines()) < README_MOST_LINES


def test_ci_runs_exactly_the_readme_test_command() -> None:
    [command] = fenced_commands("Test the template")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()

    assert command == "python3 -m pip install uv && python3 -m uv run pytest"
    assert command in ci_lines


def test_docs_site_builds_strict(tmp_path: Path) -> None:
    """A broken link or anchor, a page missing from the nav or a nav entry without its page
    fails the build."""
    mkdocs = Path(sys.executable).with_name("mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run(mkdocs, "build", "--strict", "--site-dir", tmp_path / "site", cwd=ROOT, env=env)

    assert (tmp_path / "site" / "questions" / "index.html").is_file()


def test_readme_links_point_at_pages_that_exist() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", README)

    assert links
    assert [link for link in links if not (ROOT / link).is_file()] == []


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def test_the_harness_and_tools_import_nothing_from_tests() -> None:
    """One direction: harness/ is the library, tests/ and tools/ its users."""
    importing = re.compile(r"^\s*(from tests[. ]|import tests\b)", re.MULTILINE)

    offenders = [
        path for path in python_files("harness", "tools") if importing.search(path.read_text())
    ]

    assert [str(path.relative_to(ROOT)) for path in offenders] == []


def test_lists_of_choices_are_read_from_copier_yml_not_copied() -> None:
    """Two choices of a question side by side, as a copied list would have them."""
    listed = [
        f'"{first}", "{second}"'
        for name in QUESTIONS
        if "choices" in QUESTIONS[name]
        for first in choices(name)
        for second in choices(name)
        if isinstance(first, str) and first != second
    ]

    copies = [
        f"{path.relative_to(ROOT)}: {literal}"
        for path in python_files("harness", "tests", "tools")
        for literal in listed
        if literal in path.read_text()
    ]

    assert copies == []


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
