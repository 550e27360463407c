"""Read-your-writes with a replica: a client that has just written reads from the primary."""

import math

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.replicas import ReplicaRouter

# The cookie a committed write sets (with a replica) so the client's next reads see it.
READ_YOUR_WRITES_COOKIE = "read_primary"


def wants_primary(request: Request, router: ReplicaRouter) -> bool:
    """A client that wrote within DB_READ_YOUR_WRITES seconds carries the cookie its write set."""
    return router.replica_configured and READ_YOUR_WRITES_COOKIE in request.cookies


class ReadYourWrites:
    """With a replica: a response to a request that committed a write sets a cookie for
    DB_READ_YOUR_WRITES seconds, and the client's reads go to the primary while it lasts, so
    they see the write before the replica has replayed it."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.cookie = (
            f"{READ_YOUR_WRITES_COOKIE}=1; Max-Age={math.ceil(seconds)}; Path=/; HttpOnly; "
            "SameSite=Lax"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and scope.get("state", {}).get("wrote"):
                MutableHeaders(scope=message).append("set-cookie", self.cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)
