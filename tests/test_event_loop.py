"""The event loop each serving process runs, as the project's commands start it: uvicorn with
`--loop app.loop:new_event_loop` (the Dockerfile's and both compose files'), in one process,
with two workers (WEB_CONCURRENCY=2), and under `--reload` as compose.dev.yaml runs it. Which
loop a process runs is read from the process itself: uvloop's library is mapped in its memory
only when it runs uvloop."""

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.environments import project_environment
from harness.service import EVENT_LOOP, free_port, prepare, server_workdir, stop, wait_until_live

# (uvicorn options, WEB_CONCURRENCY, serving processes, of which on uvloop)
COMMANDS = {
    "one-process": ([], "1", 1, 0),
    "two-workers": (["--workers", "2"], "2", 2, 2),
    "dev-reload": (["--reload", "--reload-dir", "app"], "1", 1, 0),
}


@pytest.fixture(scope="module")
def project() -> Iterator[tuple[Path, Path]]:
    with server_workdir("event-loop-") as workdir:
        yield prepare(workdir)


def descendants(pid: int) -> list[int]:
    """The process's children, their children, and so on (Linux: /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def runs_uvloop(pid: int) -> bool:
    return "uvloop" in Path(f"/proc/{pid}/maps").read_text()


@contextmanager
def serving(project: tuple[Path, Path], options: list[str], workers: str) -> Iterator[int]:
    """uvicorn as the image runs it, with `options`, until every worker has started; its pid."""
    path, python = project
    port = free_port()
    command = [str(python), "-m", "uvicorn", "app.main:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--loop", EVENT_LOOP, *options]
    env = project_environment(python, web_concurrency=workers)
    log = path / f"uvicorn-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=path, env=env, stdout=output, stderr=output)
    try:
        wait_until_live(f"http://127.0.0.1:{port}", process, timeout=60)
        deadline = time.monotonic() + 60
        while log.read_text().count("Application startup complete") < int(workers):
            assert time.monotonic() < deadline, f"not every worker started:\n{log.read_text()}"
            time.sleep(0.1)
        yield process.pid
    finally:
        stop(process)


@pytest.mark.parametrize(
    ("options", "workers", "serving_processes", "on_uvloop"),
    COMMANDS.values(),
    ids=COMMANDS.keys(),
)
def test_each_serving_process_runs_the_loop_web_concurrency_asks_for(
    project: tuple[Path, Path],
    options: list[str],
    workers: str,
    serving_processes: int,
    on_uvloop: int,
) -> None:
    with serving(project, options, workers) as pid:
        # The processes that serve: uvicorn itself alone, or the children it started (workers,
        # or the reloaded server); multiprocessing's helpers import no event loop at all.
        children = descendants(pid)
        loops = [runs_uvloop(each) for each in (children if options else [pid])]

    assert len(loops) >= serving_processes
    assert sum(loops) == on_uvloop
