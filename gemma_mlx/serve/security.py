"""ASGI guards in front of every route: Host check, API key, request-body limit."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
PUBLIC = {"/health", "/", "/favicon.ico"}  # the chat page asks for the key itself


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


async def _reply(send: Callable, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())] + (headers or [])})
    await send({"type": "http.response.body", "body": data})


def _host(headers: dict[bytes, bytes]) -> str:
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """Rejects, before the app sees them: a Host header that is not this server's when it
    listens on loopback (DNS rebinding), a missing or wrong API key (compared in constant
    time; /health and the page stay public), and a body over `max_body` bytes."""

    def __init__(self, app: Any, api_key: str | None, max_body: int, loopback: bool,
                 allowed_hosts: list[str] = ()):
        self.app, self.max_body = app, max_body
        self.api_key = api_key.encode() if api_key else None
        self.hosts = (LOOPBACK | {h.lower() for h in allowed_hosts}) if loopback else None

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]],
                       send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.hosts is not None and _host(headers) not in self.hosts:
            return await _reply(send, 403, error_body(
                "the Host header does not name this server (DNS rebinding guard); add the "
                "name with --allowed-host", "forbidden"))
        if self.api_key and scope["path"] not in PUBLIC and scope["method"] != "OPTIONS":
            auth = headers.get(b"authorization", b"")
            token = auth[7:] if auth[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"")
            if not hmac.compare_digest(token, self.api_key):
                return await _reply(send, 401, error_body(
                    "a valid API key is required (Authorization: Bearer KEY)",
                    "authentication_error", code="invalid_api_key"))
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _reply(send, 413, error_body(
                f"the request body is larger than {self.max_body} bytes (--max-body-mb)"))
        return await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Callable) -> Callable:
        """A receive that stops a chunked body at the limit."""
        seen = 0

        async def wrapped() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        return wrapped


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"the request body is larger than {limit} bytes (--max-body-mb)")
