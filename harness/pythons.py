"""A python_version in its own base image: uv run inside `python:X.Y-slim` on a project.

The machines these tools run on have few Pythons (CI's has 3.11 alone) and uv cannot download
one there. The project's own base image has its Python, so uv (this machine's binary, mounted)
runs there: `tools.lock` locks for a version with no interpreter here, and tests/test_pythons.py
runs each version's suite where a version mismatch would show.
"""

from pathlib import Path

from uv import find_uv_bin

# Mounted at /cache in every image and kept between runs: uv's downloads (/cache/uv), shared by
# every image, and whatever else a caller keeps there (mypy's cache).
IMAGE_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "images"


def base_image(python_version: str) -> str:
    """The image a project's Dockerfile builds on (or its stand-in: the same name)."""
    return f"python:{python_version}-slim"


def uv_in_image(
    python_version: str,
    project: Path,
    *arguments: str,
    env: dict[str, str] | None = None,
    network: str | None = None,
) -> list[str]:
    """The `docker run` command that runs `uv *arguments` in `project` (mounted at /project)
    inside the version's base image, on the image's Python only (never a downloaded one)."""
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    command = ["docker", "run", "--rm", "--workdir", "/project"]
    command += ["--volume", f"{find_uv_bin()}:/usr/local/bin/uv:ro"]
    command += ["--volume", f"{project.resolve()}:/project"]
    command += ["--volume", f"{IMAGE_CACHE}:/cache", "--env", "UV_CACHE_DIR=/cache/uv"]
    variables = {"UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": python_version, **(env or {})}
    for name, value in variables.items():
        command += ["--env", f"{name}={value}"]
    if network:
        command += ["--network", network]
    return [*command, base_image(python_version), "uv", *arguments]
