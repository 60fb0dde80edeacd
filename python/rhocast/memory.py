"""Resident memory as the operating system sees it (C, C++ and Fortran allocations included)."""
from __future__ import annotations

import resource
import threading
from pathlib import Path


def current_rss_mb() -> float:
    """Resident set size of this process now (MB); the lifetime peak where /proc is absent."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


class PeakRSS:
    """``with PeakRSS() as peak: ...`` then ``peak.mb``: the highest RSS (MB) while the block ran.

    A thread samples /proc every ``interval`` seconds, so a spike shorter than that can be missed;
    ``ru_maxrss`` would instead give the peak of the whole process lifetime, not of this block.
    """

    def __init__(self, interval: float = 0.01):
        self.interval, self.mb = interval, 0.0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakRSS":
        self.mb = current_rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.mb = max(self.mb, current_rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.mb = max(self.mb, current_rss_mb())
