"""The demo as a benchmark: runs ``rhocast demo`` (rhocast.demo.run_demo) and records its summary and plots.

    python benchmarks/demo.py
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from _record import record
from rhocast.demo import format_summary, run_demo

FIGURES = Path(__file__).with_name("figures")


def main() -> None:
    FIGURES.mkdir(exist_ok=True)
    folder = Path(__file__).with_name("cache") / "demo"
    shutil.rmtree(folder, ignore_errors=True)  # a full run, references included
    t = time.perf_counter()
    result = run_demo(str(folder), progress=False)
    wall = time.perf_counter() - t
    for name in ("learning_curve", "parity", "density_error_slice"):
        shutil.copy(folder / f"{name}.png", FIGURES / f"demo_{name}.png")
    record("Demo (`rhocast demo`): distorted water molecules end to end",
           f"Wall time {wall:.0f} s on 2 cores (the issue's limit: 10 minutes).\n\n```text{format_summary(result)}\n```\n\n"
           "![learning curve](figures/demo_learning_curve.png) ![parity](figures/demo_parity.png) "
           "![density error](figures/demo_density_error_slice.png)")


if __name__ == "__main__":
    main()
