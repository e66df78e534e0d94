"""Per-thread scratch arrays: reused within a thread, never shared between threads, huge ones fresh."""

import threading

import numpy as np

from colorize_cli.photos import scratch


def test_a_thread_reuses_its_buffer_and_other_threads_get_their_own():
    allocate = scratch.allocator("test-L")
    first = allocate((30, 40), np.float32)
    second = allocate((20, 50), np.float32)  # smaller: a view of the same memory
    assert first.shape == (30, 40) and second.shape == (20, 50) and second.dtype == np.float32
    assert np.shares_memory(first, second) and second.flags.c_contiguous
    grown = allocate((100, 100, 3), np.uint16)  # larger: a new buffer, kept for the next call
    assert grown.shape == (100, 100, 3) and not np.shares_memory(grown, first)
    assert np.shares_memory(allocate((5, 5), np.uint8), grown)
    assert not np.shares_memory(scratch.allocator("test-rgb")((5, 5), np.uint8), grown)  # one buffer per name

    other = []
    thread = threading.Thread(target=lambda: other.append(allocate((30, 40), np.float32)))
    thread.start()
    thread.join()
    assert not np.shares_memory(other[0], grown)


def test_arrays_above_the_cap_are_allocated_fresh(monkeypatch):
    monkeypatch.setattr(scratch, "MAX_BYTES", 1000)
    allocate = scratch.allocator("test-cap")
    small = allocate((10, 10), np.uint8)
    assert np.shares_memory(small, allocate((10, 10), np.uint8))
    big = allocate((100, 100), np.uint8)
    assert not np.shares_memory(big, allocate((100, 100), np.uint8))
