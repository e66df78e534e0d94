"""Small photos, archives' raw material and a local HTTP server for the prep-dataset and reader tests."""

import contextlib
import io
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


def make_photo(seed, size=(48, 64)):
    """A smooth, strongly coloured uint8 (H, W, 3) image, different for every seed."""
    grid = (np.random.default_rng(seed).random((5, 6, 3)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grid).resize((size[1], size[0]), Image.Resampling.BICUBIC))


def jpeg_bytes(pixels, quality=92, **save_options):
    """Encode pixels as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, **save_options)
    return buffer.getvalue()


def write_photos(folder, seeds, size=(48, 64)):
    """JPEGs `photo-<seed>.jpg` in `folder` (created); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"photo-{seed:03d}.jpg"
        path.write_bytes(jpeg_bytes(make_photo(seed, size)))
        paths.append(path)
    return paths


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server API)
        server = self.server
        path = self.path.split("?")[0]
        server.requests[path] += 1
        server.queries.append(self.path)
        status, body, declared = server.routes(path, server.requests[path])
        self.send_response(status)
        if declared:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for chunk in [body] if isinstance(body, bytes) else body:  # an iterable body is sent as it comes
            self.wfile.write(chunk)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def local_server(routes):
    """An HTTP server on 127.0.0.1 (only); routes(path, nth_request) -> (status, body, send_length), where
    body is bytes or (with send_length False) an iterable of byte chunks.

    Yields the server: `.base` is its URL, `.requests` counts requests per path, `.queries` lists them.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.routes, server.requests, server.queries = routes, Counter(), []
    server.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
