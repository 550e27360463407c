"""Apply the question renames and removals of one template release to a copier answers file.

Usage: python hooks/migrate_answers.py ANSWERS_FILE RELEASE [CHANGES_TOML]

copier runs it from the `_migrations` entry of each release that answer_changes.toml lists; that
file shows the exact entry (version, command, when) to add to copier.yml.

Standard library only: copier runs it with the Python it runs on, in the user's project.
The answers file is the flat YAML copier writes (one top-level `key: value` per question, with
indented continuation lines for long values); keys are renamed and blocks removed line by line,
so values and comments stay exactly as they were.
"""

import sys
import tomllib
from pathlib import Path

DEFAULT_CHANGES = Path(__file__).with_name("answer_changes.toml")


def changes_of(release: str, table: dict[str, object]) -> tuple[dict[str, str], list[str]]:
    releases = table.get("release", [])
    assert isinstance(releases, list)
    for entry in releases:
        if entry["version"] == release:
            return dict(entry.get("renamed", {})), list(entry.get("removed", []))
    raise SystemExit(f"{DEFAULT_CHANGES.name} lists no release {release!r}")


def top_level_key(line: str) -> str | None:
    if not line or line[0] in " \t#-" or ":" not in line:
        return None
    return line.split(":", 1)[0].strip()


def migrate(text: str, *, renamed: dict[str, str], removed: list[str]) -> str:
    """The answers text with `renamed` keys renamed and `removed` keys' blocks dropped."""
    present = {top_level_key(line) for line in text.splitlines()}
    clashes = sorted(new for old, new in renamed.items() if old in present and new in present)
    if clashes:
        raise SystemExit(f"answers already hold {', '.join(clashes)}: rename would overwrite them")
    kept: list[str] = []
    dropping = False
    for line in text.splitlines(keepends=True):
        key = top_level_key(line)
        if key is not None:
            dropping = key in removed
            if key in renamed:
                line = renamed[key] + line[len(key) :]
        elif line.strip() and not line.startswith((" ", "\t", "-")):
            dropping = False  # a comment or document marker ends the block
        if not dropping:
            kept.append(line)
    return "".join(kept)


def main(arguments: list[str]) -> None:
    if len(arguments) not in (2, 3):
        raise SystemExit(__doc__)
    answers = Path(arguments[0])
    table = tomllib.loads(
        Path(arguments[2] if len(arguments) == 3 else DEFAULT_CHANGES).read_text()
    )
    renamed, removed = changes_of(arguments[1], table)
    answers.write_text(migrate(answers.read_text(), renamed=renamed, removed=removed))


if __name__ == "__main__":
    main(sys.argv[1:])
