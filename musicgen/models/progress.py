"""Progress reporting of the generation loop: ``progress(done_frames, total_frames)`` callbacks."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int, int], None]


def progress_callback(progress: ProgressFn | bool | None, total: int, start: int) -> Callable | None:
    """``progress(done_frames, total_frames)``; ``True`` prints a line per 10 %."""
    if not progress:
        return None
    if progress is True:
        last = [-1]

        def printer(done: int, n: int) -> None:
            pct = int(100 * done / n)
            if pct // 10 != last[0]:
                last[0] = pct // 10
                print(f"generated {done}/{n} frames ({pct}%)", flush=True)

        fn: ProgressFn = printer
    else:
        fn = progress

    def callback(done_steps: int) -> None:
        fn(min(total, start + done_steps), total)

    return callback
