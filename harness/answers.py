"""The answer space, read from copier.yml: every list of choices comes from there, so adding a
choice is one edit to copier.yml (plus its tests)."""

import itertools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from harness.paths import ROOT

COPIER_YML = yaml.safe_load((ROOT / "copier.yml").read_text())
QUESTIONS = {
    name: spec
    for name, spec in COPIER_YML.items()
    if not name.startswith("_") and spec.get("when") is not False
}


def choices(question: str) -> list[Any]:
    """The values a question accepts: its choices' values, or both booleans."""
    spec = QUESTIONS[question]
    if spec["type"] == "bool":
        return [False, True]
    listed = spec["choices"]
    return list(listed.values()) if isinstance(listed, dict) else list(listed)


def machine_python() -> str:
    """The python_version choice of the interpreter running the tests: the projects they render
    run on it (each other version runs in its own image: tests/test_pythons.py)."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert running in choices("python_version"), f"python_version does not offer {running}"
    return running


BASE_ANSWERS = {"project_name": "Orders Service", "python_version": machine_python()}


def default(question: str) -> Any:
    """The answer a question takes when nobody gives one."""
    return QUESTIONS[question]["default"]


DRIVERS: list[str] = choices("db_driver")


@dataclass(frozen=True)
class Combination:
    """One combination of the answers that change code."""

    db_driver: str
    orm_base_style: str
    use_pgvector: bool
    test_db_strategy: str

    @property
    def id(self) -> str:
        return "-".join(
            [
                self.db_driver,
                self.orm_base_style.removeprefix("declarative_base_"),
                "pgvector" if self.use_pgvector else "novector",
                self.test_db_strategy,
            ]
        )

    @property
    def answers(self) -> dict[str, Any]:
        return {**BASE_ANSWERS, **self.__dict__}


def combinations() -> Iterator[Combination]:
    fields = ["db_driver", "orm_base_style", "use_pgvector", "test_db_strategy"]
    for values in itertools.product(*(choices(field) for field in fields)):
        yield Combination(**dict(zip(fields, values, strict=True)))
