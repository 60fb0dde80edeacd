"""Test utility: one computation run with one and with two OpenMP threads of the compiled core."""
from __future__ import annotations

from typing import Callable, TypeVar

from rhocast import _core

T = TypeVar("T")


def serial_and_parallel(compute: Callable[[], T]) -> tuple[T, T]:
    """``compute()`` with 1 and then 2 core threads (the caller's thread count restored afterwards)."""
    n = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        serial = compute()
        _core.set_num_threads(2)
        parallel = compute()
    finally:
        _core.set_num_threads(n)
    return serial, parallel
