"""What the template's tests share: the answer space read from copier.yml, and rendering."""

import fcntl
import glob
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import copier
import yaml
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
# Environment the generated projects must not inherit: it would point them at other databases or
# (PYTEST_XDIST_*) make every nested pytest run believe it is the same xdist worker of one run.
FOREIGN_VARIABLES = ["TEST_DATABASE_URL", "DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT"]
FOREIGN_PREFIXES = ("PYTEST_", "DB_")
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


TEMPLATE_FILES = ["copier.yml", "template", "hooks", "locks"]


def copy_working_tree(destination: Path) -> Path:
    """The template's files as they are now, outside git: copier renders them as they are,
    not the last tag and not the last commit."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in TEMPLATE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=IGNORED, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, destination / name)
    return destination


IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")


def render(
    source: Path | str, destination: Path, *, vcs_ref: str | None = None, **answers: Any
) -> Path:
    """Render `source` into `destination` with the given answers and defaults elsewhere."""
    copier.run_copy(
        str(source),
        destination,
        data={**BASE_ANSWERS, **answers},
        defaults=True,
        overwrite=True,
        unsafe=False,
        quiet=True,
        vcs_ref=vcs_ref,
    )
    return destination


def run(
    *command: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    returncode: int | None = 0,
    timeout: float = 600,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; if it exits otherwise than expected (any way, for None), the failure
    shows its output."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert returncode is None or result.returncode == returncode, (
        f"{' '.join(map(str, command))} exited {result.returncode}, not {returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


TAG_MODEL = """\
{vector_import}from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(50), unique=True)
{vector_column}"""


def add_tag_model(project: Path, *, with_vector: bool) -> None:
    (project / "app" / "models" / "tag.py").write_text(
        TAG_MODEL.format(
            vector_import="from pgvector.sqlalchemy import Vector\n" if with_vector else "",
            vector_column=(
                "    embedding: Mapped[list[float]] = mapped_column(Vector(3))\n"
                if with_vector
                else ""
            ),
        )
    )
    write_models_package(project)


def write_models_package(project: Path) -> None:
    """app/models/__init__.py importing every model module there, as a team keeps it."""
    package = project / "app" / "models"
    modules = sorted(
        path.stem for path in package.glob("*.py") if path.stem not in ("__init__", "resources")
    )
    imports = ["from app.models import resources  # noqa: F401"]
    imports += [f"from app.models.{module} import {module.capitalize()}" for module in modules]
    names = ", ".join(f'"{module.capitalize()}"' for module in modules)
    (package / "__init__.py").write_text("\n".join(imports) + f"\n\n__all__ = [{names}]\n")


def interpreter(version: str) -> Path | None:
    """A Python `version` (e.g. "3.12") on this machine, found without downloading one: the
    one running the tests, one on PATH, or one pyenv installed."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return Path(sys.executable)
    candidates = [shutil.which(f"python{version}"), f"/usr/bin/python{version}"]
    candidates += sorted(glob.glob(str(Path.home() / f".pyenv/versions/{version}.*/bin/python3")))
    for candidate in [path for path in candidates if path and Path(path).exists()]:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == str(
            tuple(map(int, version.split(".")))
        ):
            return Path(candidate)
    return None


def available_python_versions() -> list[str]:
    """The python_version choices this machine can run (uv cannot download interpreters here)."""
    return [version for version in choices("python_version") if interpreter(version)]


def project_python(project: Path) -> Path:
    """The Python of a virtual environment holding exactly what the rendered project's own
    pyproject.toml declares (dependencies and the dev group) on its python_version: one per
    distinct set, kept in .cache, so a dependency missing from one variant fails its tests.
    Safe to call from parallel processes."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    version = yaml.safe_load((project / ".copier-answers.yml").read_text())["python_version"]
    dependencies, dev = pyproject["project"]["dependencies"], pyproject["dependency-groups"]["dev"]
    declared = [*sorted(dependencies), "--dev", *sorted(dev)]
    digest = hashlib.sha256("\n".join(declared).encode()).hexdigest()[:12]
    venv = CACHE / f"venv-py{version}-{digest}"
    python = interpreter(version)
    assert python, f"no Python {version} on this machine"
    CACHE.mkdir(exist_ok=True)
    uv = find_uv_bin()
    with (CACHE / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "installed").exists():
            shutil.rmtree(venv, ignore_errors=True)
            run(uv, "venv", "--quiet", "--python", python, venv, cwd=ROOT)
            # Compiled at install: with PYTHONDONTWRITEBYTECODE set (as on CI machines), every
            # process would otherwise compile all it imports, some 2.5 s per generated suite.
            install = [uv, "pip", "install", "--quiet", "--compile-bytecode"]
            install += ["--python", venv / "bin" / "python"]
            install += [
                "-r",
                project / "pyproject.toml",
                "--group",
                f"{project / 'pyproject.toml'}:dev",
            ]
            run(*install, cwd=ROOT)
            (venv / "installed").write_text("\n".join(declared))
    return venv / "bin" / "python"


def project_environment(python: Path, **extra: str | Path) -> dict[str, str]:
    """The environment a generated project's tools run in: its venv first on PATH, nothing
    inherited that would point it elsewhere."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in FOREIGN_VARIABLES and not key.startswith(FOREIGN_PREFIXES)
    }
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"
    env.update({key.upper(): str(value) for key, value in extra.items()})
    return env
