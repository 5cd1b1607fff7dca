"""A moto server for the tests and the local run: S3, DynamoDB and Secrets Manager on loopback.

Requests are served one at a time (a lock around moto's WSGI app). moto does not make a
DynamoDB conditional write or a transaction atomic against concurrent requests, as real
DynamoDB does; serialising them makes moto behave like DynamoDB, so concurrency tests measure
ct-trigger's code and not moto's races. Connections are still accepted concurrently.

Prints the bound port on its first line. Exits when its standard input closes, so it never
outlives the process that started it.
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server, WSGIRequestHandler


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            return [b"".join(app(environ, start_response))]

    server = make_server("127.0.0.1", port, serialised, threaded=True, request_handler=QuietHandler)
    print(server.server_port, flush=True)

    def exit_with_parent() -> None:
        try:
            sys.stdin.read()
        finally:
            os._exit(0)

    if not (len(sys.argv) > 2 and sys.argv[2] == "--foreground"):
        threading.Thread(target=exit_with_parent, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
