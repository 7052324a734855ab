"""Progress on the console for the CLI's long steps: a bar with the step's name, elapsed time and (where the
total is known) time remaining. A bar is transient (gone when the step ends), drawn only on a terminal (a log or a
pipe gets none) and off with --quiet."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Step = Callable[[str], None]   # called as each unit of work starts (or ends), with a label for it


@contextmanager
def steps(console: Console, title: str, total: int | None, enabled: bool = True,
          on_start: bool = True) -> Iterator[Step]:
    """A bar over `total` units; `step(label)` marks a unit started (`on_start`: the bar counts those before it as
    done) or done. `total` None: a spinner-like bar that only shows elapsed time."""
    if not enabled or not console.is_terminal:
        yield lambda _label: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, *([TimeRemainingColumn()] if total else []), console=console, transient=True) as bar:
        task = bar.add_task(title, total=total)
        count = 0

        def step(label: str) -> None:
            nonlocal count
            count += 1
            bar.update(task, completed=count - 1 if on_start else count, description=f"{title}: {label}")

        yield step
