"""Atomic file writes: a file is written under a temporary name beside its destination, flushed to disk
and renamed onto it, so that a reader, or a writer killed half-way, never sees a partly written file."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union


@contextmanager
def atomic_write(path: Union[str, Path]) -> Iterator[Path]:
    """Yields the temporary path to write ``path``'s content to (any writer: open, h5py, numpy); when the
    block ends without an error the file is fsynced and renamed to ``path``, otherwise it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Union[str, Path], data: bytes) -> None:
    """``data`` written to ``path`` atomically (:func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
