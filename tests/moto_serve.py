"""A moto server for the tests and the local run: S3, DynamoDB and Secrets Manager on loopback.

Requests are served one at a time (a lock around moto's WSGI app). moto does not make a
DynamoDB conditional write or a transaction atomic against concurrent requests, as real
DynamoDB does; serialising them makes moto behave like DynamoDB, so concurrency tests measure
ct-trigger's code and not moto's races. Connections are still accepted concurrently.

`POST /_ct/seed` with a JSON body `{"bucket": ..., "keys": [...]}` puts empty objects under
those keys straight into moto's S3 backend (the bucket must exist): thousands of keys in a
fraction of a second, where one PUT a key takes a minute. A key may also be an object
`{"key": ..., "size": n, "last_modified": epoch seconds, "fill": "x"}`: `size` bytes of
`fill`, listed as last modified then (as a replicated or restored copy keeps its old date).
`"delete": [...]` removes keys first. Listing them is still moto's own ListObjectsV2.
Nothing else answers on that path.

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
        import datetime

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in body.get("delete", []):
            backend.delete_object(body["bucket"], key)
        for key in body.get("keys", []):
            if isinstance(key, str):
                backend.put_object(body["bucket"], key, b"")
                continue
            fill = key.get("fill", "x").encode()
            value = (fill * (key.get("size", 0) // max(len(fill), 1) + 1))[: key.get("size", 0)]
            stored = backend.put_object(body["bucket"], key["key"], value)
            if "last_modified" in key:
                stored.last_modified = datetime.datetime.fromtimestamp(
                    key["last_modified"], datetime.timezone.utc
                ).replace(tzinfo=None)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"seeded": len(body.get("keys", []))}).encode()]

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
