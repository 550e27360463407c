"""Running a command and showing its output when it fails."""

import subprocess
from collections.abc import Callable
from pathlib import Path

# The `run_in_project` fixture (tests/conftest.py): a command in a rendered project's environment,
# its output returned.
ProjectRunner = Callable[..., str]


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
