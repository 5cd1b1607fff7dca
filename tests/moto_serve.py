"""A moto server for the tests and the local run: S3, DynamoDB and Secrets Manager on loopback.

Requests are served one at a time (a lock around moto's WSGI app). moto does not make a
DynamoDB conditional write or a transaction atomic against concurrent requests, as real
DynamoDB does; serialising them makes moto behave like DynamoDB, so concurrency tests measure
ct-trigger's code and not moto's races. Connections are still accepted concurrently.

`POST /_ct/seed` with a JSON body `{"bucket": ..., "keys": [...]}` puts empty objects under
those keys straight into moto's S3 backend (the bucket must exist): thousands of keys in a
fraction of a second, where one PUT a key takes a minute. Listing them is still moto's own
ListObjectsV2. Nothing else answers on that path.

Prints the bound port on its first line. Exits when its standard input closes, so it never
outlives the process that started it.
"""

import json
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

    def seed(environ, start_response):
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length))
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in body["keys"]:
            backend.put_object(body["bucket"], key, b"")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"seeded": len(body["keys"])}).encode()]

    def serialised(environ, start_response):
        with lock:
            if environ.get("PATH_INFO") == "/_ct/seed" and environ.get("REQUEST_METHOD") == "POST":
                return seed(environ, start_response)
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
