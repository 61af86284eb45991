"""The HTTP/1.1 connection protocol `edge serve` runs: uvicorn's httptools one, with a deadline
for every request to arrive.

uvicorn closes a connection that idles after a response (`timeout_keep_alive`), but not one that
never sends a request, nor one that sends its headers a byte every few seconds (slowloris): each
holds a socket and a parser for as long as the client likes, and a few thousand of them use up
the process's file descriptors. Here a connection must deliver each request, head and body,
within `server.request_timeout_s` of its first byte (or of the connection opening); otherwise it
is closed. The request being answered is never timed: the deadline stops at the request's end.

(`Content-Length` together with `Transfer-Encoding`, the classic request-smuggling shape, is
refused by llhttp itself with a 400 and a closed connection: tests/e2e/test_http_conformance.py.)
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_TIMEOUT_S = 10.0


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    request_timeout_s = DEFAULT_TIMEOUT_S  # the configuration's, set by create_app in each process
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # the first request must start and end within the deadline too

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
