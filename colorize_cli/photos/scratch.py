"""Per-thread scratch arrays for a batch worker's full-size temporaries (L, the output pixels).

A fresh 12 MP float L is 48 MB of new pages, and the page faults to map them cost twice the pass that
fills it (27 against 9 ms here). Arrays up to MAX_BYTES reuse the thread's previous buffer of that
name, grown as needed; larger ones are allocated fresh, as they are rare and their faults a small share.
Only for a caller that is done with one image's arrays before it asks for the next image's.
"""

import threading

import numpy as np

MAX_BYTES = 256 * 2**20

_buffers = threading.local()


def allocator(name):
    """np.empty-like (shape, dtype) -> array, reusing this thread's buffer `name` between calls."""

    def allocate(shape, dtype):
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        if size > MAX_BYTES:
            return np.empty(shape, dtype)
        store = getattr(_buffers, "store", None)
        if store is None:
            store = _buffers.store = {}
        buffer = store.get(name)
        if buffer is None or buffer.nbytes < size:
            buffer = store[name] = np.empty(size, np.uint8)
        return buffer[:size].view(dtype).reshape(shape)

    return allocate
