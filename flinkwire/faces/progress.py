"""A progress bar over file bytes read (tqdm), quiet when not on a terminal."""

from __future__ import annotations

import contextlib
import sys

from ..tcp.build import total_size


@contextlib.contextmanager
def progress_for(paths, quiet: bool = False, stream=None):
    """Yield a callback `progress(bytes_done)`, or None when no bar is shown."""
    stream = stream or sys.stderr
    size = total_size(paths)
    if quiet or not getattr(stream, "isatty", lambda: False)() or size < 32 * 1024 * 1024:
        yield None
        return
    from tqdm import tqdm
    bar = tqdm(total=size, unit="B", unit_scale=True, desc="reading", file=stream, leave=False)

    def update(done: int) -> None:
        bar.update(max(0, min(done, size) - bar.n))

    try:
        yield update
    finally:
        bar.close()
