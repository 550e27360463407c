"""The event loop uvicorn serves on (`--loop app.loop:new_event_loop`, as the Dockerfile runs it)."""

import asyncio
import multiprocessing


def new_event_loop() -> asyncio.AbstractEventLoop:
    """asyncio's own loop in a lone server process, uvloop in each of several workers.

    uvloop accepts one waiting connection per turn of its loop (libuv 1.45 and later, libuv pull
    request 3696), and under load a turn takes milliseconds: a burst of new clients waited
    0.3-0.6 s for their first responses, against at most 0.1-0.23 s on asyncio's loop, which
    accepts them all at once (the CPU per request is the same). Among uvicorn's worker processes
    (WEB_CONCURRENCY > 1, started by multiprocessing) that greed is a fault: the first worker to
    wake takes the whole burst, so there uvloop's one at a time spreads the clients."""
    if multiprocessing.parent_process() is None:
        return asyncio.new_event_loop()
    import uvloop  # uvicorn[standard] installs it where it runs (not on Windows)

    return uvloop.new_event_loop()
