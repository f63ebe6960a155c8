"""A stand-in child for launcher tests: ``python dummy_http_server.py PORT`` answers 200 JSON on
``/healthz`` (a gateway) and ``/api/version`` (an Ollama-like engine), 404 elsewhere."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = {"/healthz": {"status": "ok"}, "/api/version": {"version": "0.0.0-dummy"}}
        payload = body.get(self.path.split("?")[0])
        data = json.dumps(payload or {"error": "not found"}).encode()
        self.send_response(200 if payload else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        del format, args  # quiet


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"dummy listening on {sys.argv[1]}", flush=True)
    server.serve_forever()
