"""Races run with real threads released at the same instant, many times over, on the test
database (SQLite by default, PostgreSQL in CI): through the services, and through the
pages as two people at two browsers."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from biobank.errors import DomainError
from biobank.extensions import db as _db

THREADS = 4
ROUNDS = 12
JOIN_SECONDS = 120


def _run_together(work: Callable[[int], None], threads: int) -> None:
    barrier = threading.Barrier(threads)

    def run(n):
        barrier.wait()
        work(n)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=JOIN_SECONDS)
    assert not any(w.is_alive() for w in workers), "a racer never finished"


def race(app, work, threads=THREADS) -> Counter:
    """Run ``work(n)`` in ``threads`` threads, each in its own application context and
    transaction; count the outcomes by exception class name ("ok" when it committed)."""
    _db.session.commit()  # the test's own transaction would hold SQLite's write lock
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def work_in_context(n):
        with app.app_context():
            try:
                work(n)
                _db.session.commit()
                outcome = "ok"
            except DomainError as err:
                _db.session.rollback()
                outcome = type(err).__name__
            except Exception as err:  # anything else is a bug the test must show
                _db.session.rollback()
                outcome = f"unexpected {type(err).__name__}: {err}"
            with lock:
                outcomes[outcome] += 1

    _run_together(work_in_context, threads)
    return outcomes


def race_pages(app, posts: list[Callable[[], object]]) -> list:
    """Send each of ``posts`` (a test client's request, one per person) at the same instant
    from its own thread; return their responses in order (an exception if one raised)."""
    _db.session.commit()
    answers: list = [None] * len(posts)

    def send(n):
        with app.app_context():
            try:
                answers[n] = posts[n]()
            except Exception as err:  # a crash is an outcome the test must show
                answers[n] = err

    _run_together(send, len(posts))
    return answers
