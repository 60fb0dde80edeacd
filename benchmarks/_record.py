"""Shared by the benchmark scripts: append a table with its command, machine and date to RESULTS.md."""
from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} ({cpu}, {os.cpu_count()} cores, Python {platform.python_version()})"


def best_of(f, repeat: int) -> float:
    """The shortest wall time (s) of ``repeat`` calls of ``f`` (inf for none)."""
    times = [float("inf")]
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def markdown_table(header: list[str], rows: list[list]) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def record(title: str, body: str) -> None:
    """Print ``body`` and make it the current section ``title`` of RESULTS.md, with the command line,
    machine and date: one current table per benchmark (earlier runs are in git's history)."""
    print(body)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"## {title}\n\n- command: `{' '.join(['python'] + sys.argv)}`\n- machine: {machine()}\n"
               f"- date: {stamp}\n\n{body.strip()}\n")
    head, sections = _sections(RESULTS.read_text() if RESULTS.exists() else "")
    sections[title] = section  # replaces the section in place, or appends a new one
    tmp = RESULTS.with_name(RESULTS.name + ".tmp")
    tmp.write_text(head + "\n".join(sections.values()))
    os.replace(tmp, RESULTS)


def _sections(text: str) -> tuple[str, dict[str, str]]:
    """(text before the first section, {title: section}) of a RESULTS.md; a later section of the same
    title replaces an earlier one."""
    parts = text.split("\n## ")
    head = parts[0] if not text.startswith("## ") else ""
    chunks = parts[1:] if head or not text.startswith("## ") else [text[3:]] + parts[1:]
    sections: dict[str, str] = {}
    for chunk in chunks:
        title = chunk.split("\n", 1)[0].strip()
        sections.pop(title, None)
        sections[title] = "## " + chunk.rstrip() + "\n"
    return (head.rstrip() + "\n\n" if head.strip() else ""), sections
