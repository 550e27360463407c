"""The event loop uvicorn serves on (`--loop app.loop:new_event_loop`, in the Dockerfile and
both compose files), chosen from WEB_CONCURRENCY: the number of server processes, which
uvicorn reads too. Nothing else decides it: not how the process was started (uvicorn's
`--reload` and its workers both spawn the process that serves)."""

import asyncio
import os


def server_processes() -> int:
    """WEB_CONCURRENCY, as uvicorn reads it (1 when unset)."""
    try:
        return max(1, int(os.environ.get("WEB_CONCURRENCY") or 1))
    except ValueError:
        return 1


def new_event_loop() -> asyncio.AbstractEventLoop:
    """asyncio's own loop for one server process, uvloop in each of several.

    uvloop accepts one waiting connection per turn of its loop (libuv 1.45 and later, libuv pull
    request 3696), and under load a turn takes milliseconds: a burst of new clients waits longer
    for its first responses than on asyncio's loop, which accepts them all at once (the CPU per
    request is the same). Among several worker processes sharing the listening socket that
    greed is a fault: the first worker to wake takes the whole burst, so there uvloop's one at
    a time spreads the clients."""
    if server_processes() == 1:
        return asyncio.new_event_loop()
    import uvloop  # uvicorn[standard] installs it where it runs (not on Windows)

    return uvloop.new_event_loop()
