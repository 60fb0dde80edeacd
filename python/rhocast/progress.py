"""Progress bars: tqdm on a terminal, silent otherwise (a log file would get one line per redraw)."""
from __future__ import annotations

import sys
from typing import Iterable, Optional


def progress_bar(iterable: Optional[Iterable] = None, *, show: bool = True, **tqdm_args):
    """``tqdm(iterable, **tqdm_args)``, disabled when ``show`` is False or stderr is not a terminal."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not (show and sys.stderr.isatty()), **tqdm_args)
