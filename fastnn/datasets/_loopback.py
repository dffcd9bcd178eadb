"""A throwaway HTTP server on 127.0.0.1 for testing downloads without the
internet: each path serves given bytes, an HTTP error, a body shorter than its
Content-Length, or a body that stalls midway. Test support only; nothing in
fastnn's own code paths imports it.
"""
import http.server
import threading
import time

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """``with LoopbackServer() as server: server.add("/a.gz", data); server.url``.

    ``server.hits`` lists the paths requested, in order.
    """

    def __init__(self):
        self.routes = {}
        self.hits = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.hits.append(self.path)
                route = owner.routes.get(self.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route["status"] != 200:
                    self.send_error(route["status"])
                    return
                body = route["body"]
                length = route["length"] if route["length"] is not None else len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                sent = body[:route["send"]] if route["send"] is not None else body
                self.wfile.write(sent)
                self.wfile.flush()
                if route["stall"]:
                    time.sleep(route["stall"])
                self.close_connection = True

            def log_message(self, *args):  # keep test output clean
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path, body=b"", status=200, length=None, send=None, stall=0.0):
        """Serve ``body`` at ``path``; ``status`` != 200 answers that HTTP error;
        ``length`` overrides the Content-Length; only the first ``send`` bytes
        are written, then the handler waits ``stall`` seconds and closes."""
        self.routes[path] = {"body": bytes(body), "status": status, "length": length,
                             "send": send, "stall": stall}

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
