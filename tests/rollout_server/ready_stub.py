"""A stand-in worker process for the pool's tests: serves /readyz on the port given, 200 unless a file
`sick-<its pid>` exists in the folder given (then 503, as a worker whose engine died answers)."""

import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

PORT, FOLDER = int(sys.argv[1]), Path(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None: ...

    def do_GET(self) -> None:
        sick = (FOLDER / f"sick-{os.getpid()}").exists()
        self.send_response(503 if sick else 200)
        self.send_header("content-length", "0")
        self.end_headers()


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
