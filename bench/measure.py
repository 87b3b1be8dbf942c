"""What the benchmark scripts share: counting SQL statements, medians in milliseconds."""

from __future__ import annotations

import statistics

import sqlalchemy as sa


class StatementCounter:
    """SQL statements sent to the database while listening."""

    def __init__(self, engine):
        self.engine = engine
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args):
        self.count += 1

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def ms(samples: list[float]) -> float:
    """The median of times in seconds, in milliseconds to 2 decimals."""
    return round(statistics.median(samples) * 1000, 2)
