"""The default project's image per driver, built once per run and shared by the modules that run
it: tests/test_docker.py (the compose stacks) and tests/test_kubernetes.py (the container the
Deployment describes). Both drivers build at once; tests/conftest.py imports the fixtures, so one
pytest session (one xdist worker: their tests share the xdist group "docker") builds each image
once. Docker missing fails these tests: a skipped Docker test is not a pass."""

import concurrent.futures
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.answers import DRIVERS
from harness.commands import run
from harness.render import render

DEADLINE = 240  # seconds any one wait may take before the test fails


def docker(
    *arguments: str, returncode: int | None = 0, timeout: float = DEADLINE, **env: str
) -> str:
    """A docker command; `env` adds variables to its environment (`docker run --env NAME`
    takes the value from there, so secrets stay out of the command line)."""
    environment = {**os.environ, **env} if env else None
    result = run(
        "docker",
        *arguments,
        cwd=Path.cwd(),
        returncode=returncode,
        timeout=timeout,
        env=environment,
    )
    return result.stdout.strip()


@dataclass
class Image:
    """A rendered default project (`db_driver` aside) and the image built from it."""

    driver: str
    project: Path
    tag: str
    build_seconds: float = 0
    megabytes: float = 0


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Docker must answer: these tests fail, never skip, without it (.ci/run starts it)."""
    result = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"Docker is not available:\n{result.stderr}"


def build(image: Image) -> None:
    started = time.monotonic()
    docker("build", "--quiet", "--tag", image.tag, str(image.project), timeout=1800)
    image.build_seconds = time.monotonic() - started
    image.megabytes = int(docker("image", "inspect", "--format", "{{.Size}}", image.tag)) / 1e6


@pytest.fixture(scope="session")
def images(
    docker_engine: None, template_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Image]]:
    """Each driver's default project and its image, built at once; removed after the run."""
    run_id = uuid.uuid4().hex[:8]
    images = {
        driver: Image(
            driver,
            render(
                template_source,
                tmp_path_factory.mktemp(f"image-{driver}") / "project",
                db_driver=driver,
            ),
            f"async-pg-template-test/{driver}:{run_id}",
        )
        for driver in DRIVERS
    }
    dangling_before = set(docker("images", "--quiet", "--filter", "dangling=true").split())
    try:
        with concurrent.futures.ThreadPoolExecutor(len(images)) as pool:
            list(pool.map(build, images.values()))
        for image in images.values():
            print(
                f"\n[docker] {image.driver}: image {image.megabytes:.0f} MB, "
                f"built in {image.build_seconds:.0f} s"
            )
        yield images
    finally:
        for image in images.values():
            docker("image", "rm", "--force", image.tag, returncode=None)
        # The build stages' images, left untagged by the build: ours too.
        dangling = set(docker("images", "--quiet", "--filter", "dangling=true").split())
        if leftovers := sorted(dangling - dangling_before):
            docker("image", "rm", "--force", *leftovers, returncode=None)
