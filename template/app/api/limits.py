"""The request body size limit (MAX_REQUEST_BODY_BYTES), enforced while the body is received:
a body declared larger is refused before a byte of it is read, and one that grows past the limit
(chunked, or longer than declared) is refused as soon as it does, before anything parses it."""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Answers 413 to a request whose body passes `max_bytes`. Pure ASGI: the body is counted as
    it streams in, never held here."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    await self._refuse(send)
                    # To the application, the client is gone: it stops reading and parses nothing.
                    return {"type": "http.disconnect"}
            return message

        async def silenced_send(message: Message) -> None:
            if not refused:  # once refused, whatever the application answers is dropped
                await send(message)

        await self.app(scope, counting_receive, silenced_send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"the request body is larger than {self.max_bytes} bytes"})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                # The rest of the body is never read: the connection cannot carry another request.
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
