import multiprocessing

from app.loop import new_event_loop


def loop_class() -> str:
    loop = new_event_loop()
    loop.close()
    return f"{type(loop).__module__}.{type(loop).__name__}"


def test_a_lone_server_process_runs_asyncios_own_loop() -> None:
    assert loop_class().startswith("asyncio.")


def test_a_worker_process_runs_uvloop() -> None:
    with multiprocessing.get_context("spawn").Pool(1) as workers:  # as uvicorn starts workers
        started_in_a_worker = workers.apply(loop_class)

    assert started_in_a_worker.startswith("uvloop.")
