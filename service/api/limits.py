"""The API's request-body limit: HTTP 413 before an oversized body is read into memory."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REFUSED", "BodyLimit"]

# Where a refusal before routing leaves its name in the ASGI scope.
REFUSED = "tripwire.refused"


class BodyLimit:
    """Answer 413 to a body over `limit` bytes, by its Content-Length or as it streams in.

    The body is read here (at most `limit` bytes of it) and handed on whole, so a chunked
    body without a Content-Length is held to the limit too. Pure ASGI: a 413 is sent
    without reading the rest, which the server discards.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._refuse(scope, send, 400, "the Content-Length header is not a number")
                return
            if size > self.limit:
                await self._too_large(scope, send, f"a body of {size} bytes")
                return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away mid-body; an answer it will not read still ends
                # the exchange cleanly for the middleware around this one.
                await self._refuse(scope, send, 400, "the body ended before it was complete")
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                await self._too_large(scope, send, f"a body of more than {self.limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for a disconnect

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send, what: str) -> None:
        message = (
            f"{what} is over this API's limit of {self.limit} bytes "
            "(TRIPWIRE_API_MAX_BODY_BYTES); an automation is rarely more than a few kB"
        )
        await self._refuse(scope, send, 413, message)

    async def _refuse(self, scope: Scope, send: Send, status: int, message: str) -> None:
        # The request metric's `route` label, for the middleware that counts requests.
        scope[REFUSED] = "body_refused"
        body = json.dumps({"exception_message": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
