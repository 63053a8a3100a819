"""A loopback webhook (http.server in a thread) that records what the notifier posts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Webhook:
    """A loopback webhook that answers with the scripted status codes (then 200) and records each body.

    ``retry_after`` is sent as the Retry-After header of every non-200 answer; ``times`` holds when
    each request arrived (``time.monotonic``), so tests can see the client's waits.
    """

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.delay = 0.0
        self.retry_after: str | None = None
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.times: list[float] = []
        self.lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                arrived = time.monotonic()
                with webhook.lock:
                    webhook.times.append(arrived)
                    webhook.bodies.append(body)
                    webhook.paths.append(self.path)
                    status = webhook.statuses.pop(0) if webhook.statuses else 200
                if webhook.delay:
                    time.sleep(webhook.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    if status != 200 and webhook.retry_after is not None:
                        self.send_header("Retry-After", webhook.retry_after)
                    self.end_headers()
                    self.wfile.write(b"ok" if status == 200 else b"error")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/services/T000/B000/s3cr3tWebhookToken"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def serve() -> Iterator[Webhook]:
    """A running Webhook, stopped on exit."""
    server = Webhook()
    try:
        yield server
    finally:
        server.stop()
