"""A small threaded HTTP server: routes are (method, regex) → handler(request) → Response."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str]

    def form(self) -> dict[str, str]:
        """Query and urlencoded body parameters together (as Spring reads them)."""
        values = dict(self.query)
        values.update(urllib.parse.parse_qsl(self.body.decode(errors="replace")))
        return values


@dataclass
class Response:
    status: int = 200
    body: bytes | str | object = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body, indent=2).encode(), "application/json"


Handler = Callable[[Request], Response]


def serve(port: int, routes: list[tuple[str, str, Handler]]) -> None:
    """Answer on every address at `port` until the process ends."""
    compiled = [(m, re.compile(p), h) for m, p, h in routes]

    class One(BaseHTTPRequestHandler):
        def _any(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            response = Response(404, {"error": "Not Found", "path": path})
            for method, pattern, handler in compiled:
                match = pattern.fullmatch(path)
                if match and method in (self.command, "*"):
                    response = handler(Request(self.command, path, query, headers, body,
                                               match))
                    break
            data, kind = response.encoded()
            self.send_response(response.status)
            self.send_header("Content-Type", response.headers.pop("Content-Type", kind))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def log_message(self, format: str, *args: object) -> None:
            pass  # access logs are nginx's business

    server = ThreadingHTTPServer(("0.0.0.0", port), One)
    server.daemon_threads = True
    server.serve_forever()
