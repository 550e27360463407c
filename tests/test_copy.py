"""`copier copy` as a script or a person runs it: defaults that need no answer, and a message
after copy that gives the same commands as the generated README, which need nothing but uv."""

import re
import sys
from pathlib import Path

import yaml

from harness.commands import run

COPIER = Path(sys.executable).parent / "copier"
README_COMMANDS = re.compile(
    r"^## Run it and test it\n\n```sh\n(.*?)\n```", re.MULTILINE | re.DOTALL
)


def test_copy_with_defaults_names_the_project_after_its_folder(
    template_source: Path, tmp_path: Path
) -> None:
    project = tmp_path / "my-service"

    run(COPIER, "copy", "--defaults", template_source, project, cwd=tmp_path)

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["project_name"] == "My Service"
    assert answers["project_slug"] == "my-service"


def test_a_folder_name_that_makes_no_valid_slug_is_refused_clearly(
    template_source: Path, tmp_path: Path
) -> None:
    project = tmp_path / "2026_service"

    refused = run(
        COPIER, "copy", "--defaults", template_source, project, cwd=tmp_path, returncode=None
    )

    assert refused.returncode != 0
    assert "project_slug must be kebab-case" in refused.stderr
    assert "(got '2026-service')" in refused.stderr
    assert not project.exists()


def test_the_message_after_copy_gives_the_readme_commands(
    template_source: Path, tmp_path: Path
) -> None:
    project = tmp_path / "orders"

    copied = run(
        COPIER,
        "copy",
        "--defaults",
        "--data",
        "project_name=Orders",
        template_source,
        project,
        cwd=tmp_path,
    )

    message = [line.strip() for line in copied.stderr.splitlines() if line.startswith("    ")]
    readme = README_COMMANDS.search((project / "README.md").read_text())
    assert readme, "the generated README has no 'Run it and test it' commands"
    assert message == [f"cd {project}", *readme.group(1).splitlines()]
    # The first commands need nothing but uv: no Docker, no server of one's own.
    commands = [line.split("#")[0].strip() for line in readme.group(1).splitlines()]
    assert commands == ["uv run python -m app dev", "uv run pytest"]
