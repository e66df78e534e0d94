"""How our numba kernels compile: cached machine code where there is somewhere to write it, no GIL held.

Cached code lives in __pycache__ beside the kernel's file, or where that is not writable in the user's
cache folder (numba's own fallback; NUMBA_CACHE_DIR overrides both), so a process pays a load, not a
compile of seconds. Where neither is writable, numba refuses cache=True outright: the kernels then go
uncached and compile once per process. `nogil` lets the batch's worker threads run kernels side by side.
Kernels take the maths' constants as arguments: numba bakes globals into the cached code, and the cache
would not notice a change of a constant in another module.
"""

from numba import njit


def _probe():
    pass  # decorated only to ask numba where it would cache


def _writable_cache():
    """Whether numba has somewhere to cache kernels: it looks for a place when decorating."""
    try:
        njit(cache=True)(_probe)
    except RuntimeError:
        return False
    return True


JIT_OPTIONS = {"cache": _writable_cache(), "nogil": True}
compiled = njit(**JIT_OPTIONS)
