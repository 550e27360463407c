"""A rendered project's own environment: its interpreter, a virtual environment of exactly its
declared dependencies (cached per distinct set), and process environment variables."""

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from uv import find_uv_bin

from harness.answers import choices
from harness.commands import run
from harness.paths import CACHE, ROOT

# Environment the generated projects must not inherit: it would point them at other databases or
# (PYTEST_XDIST_*) make every nested pytest run believe it is the same xdist worker of one run.
FOREIGN_VARIABLES = ["TEST_DATABASE_URL", "DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT"]
FOREIGN_PREFIXES = ("PYTEST_", "DB_")


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
