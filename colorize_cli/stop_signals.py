"""SIGINT and SIGTERM as requests: the training loop finishes its step, saves, and exits."""

import signal
import threading

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While active, the first SIGINT/SIGTERM sets `reason`; a second SIGINT interrupts at once."""

    def __init__(self):
        self.reason = None
        self._previous = {}

    def __enter__(self):
        # Python only lets the main thread install handlers; elsewhere signals keep their defaults.
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in _SIGNALS}
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(signum).name
