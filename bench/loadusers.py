"""The users of bench/load.py: Locust, headless, used as a library, in a process of its own.

Locust runs on gevent, which patches the standard library of the process it runs in; the
database work of bench/load.py (building the bank, watching PostgreSQL during the run)
stays in the parent process, which starts this one:

    .venv/bin/python bench/loadusers.py PLAN.json

PLAN.json (written by bench/load.py) names the server, the duration, each user's token
and what it works on. One JSON line is printed: every request made after the warm-up,
as [operation, milliseconds, status, when it started] (status 0: no answer; when: seconds
from the start of the measure), and the users that ran.

Each technician works on its own tubes, boxes and participants, as at a bench: the load
measures waiting for the server, never two people refused over the same tube.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import deque
from datetime import UTC, datetime, timedelta

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment

PLAN: dict = {}
# Every request after the warm-up: (operation, milliseconds, status, seconds from the
# start of the measure to its start).
SEEN: list[tuple[str, float, int, float]] = []
MEASURING = {"from": float("inf")}
# The technicians' round of 9 requests: 6 scans, 2 stores or moves, 1 visit registration.
ROUND = ("scan", "scan", "store", "scan", "register", "scan", "scan", "store", "scan")


@events.request.add_listener
def _seen(name, response_time, response, exception, **_):
    if time.monotonic() < MEASURING["from"]:
        return
    # The status answered; 0 when none was (connection refused, reset, timed out).
    status = getattr(response, "status_code", 0) or 0
    started = time.monotonic() - response_time / 1000 - MEASURING["from"]
    SEEN.append((name, round(response_time, 3), status, round(started, 3)))


def paced(seconds: float):
    """A user's wait: it starts a request every ``seconds`` on average, each interval drawn
    between half and one and a half times that, counted from the previous start (at once
    when the previous answer came later). With their random start (``stagger``), users
    never fall into step, as people at their benches do not."""

    def wait_time(user) -> float:
        now = time.monotonic()
        due = max(getattr(user, "_due", now) + seconds * random.uniform(0.5, 1.5), now)
        user._due = due
        return due - now

    return wait_time


def stagger(seconds: float) -> None:
    """Wait a random part of the first interval before the first request."""
    gevent.sleep(random.uniform(0, seconds))


class _Base(FastHttpUser):
    abstract = True
    # Connections kept alive, as a scanner station's client does.
    network_timeout = 30.0
    connection_timeout = 10.0

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}

    def _check(self, response, expected: int) -> None:
        if response.status_code != expected:
            response.failure(f"{response.status_code}: {response.text[:200]}")
        else:
            response.success()

    def scan(self) -> None:
        code = random.choice(PLAN["codes"])
        with self.client.get(
            f"/api/v1/aliquots/{code}", headers=self._headers(), name="scan", catch_response=True
        ) as response:
            self._check(response, 200)


class Technician(_Base):
    """Scans, stores and moves its own tubes between its two boxes, registers visits of
    its own participants: 6 : 2 : 1."""

    fixed_count = 0
    queue: deque = deque()

    def on_start(self) -> None:
        work = Technician.queue.popleft()
        self.token = work["token"]
        self.boxes = work["boxes"]
        # Where each of its tubes is: the index of its box in self.boxes.
        self.tubes = deque((code, 0) for code in work["tubes"])
        self.slots = deque(work["slots"])
        self.round = deque(ROUND)
        self.round.rotate(random.randrange(len(ROUND)))
        stagger(PLAN["pacing"]["technician"])

    @task
    def work(self) -> None:
        step = self.round[0]
        self.round.rotate(-1)
        if step == "store":
            self.store()
        elif step == "register":
            self.register()
        else:
            self.scan()

    def store(self) -> None:
        code, where = self.tubes.popleft()
        target = 1 - where
        with self.client.put(
            f"/api/v1/aliquots/{code}/position",
            json={"box": self.boxes[target]},
            headers=self._headers(),
            name="store",
            catch_response=True,
        ) as response:
            self._check(response, 200)
            moved = response.status_code == 200
        self.tubes.append((code, target if moved else where))

    def register(self) -> None:
        if not self.slots:
            PLAN["exhausted"] += 1
            self.scan()
            return
        participant, visit, day = self.slots.popleft()
        drawn = datetime.fromisoformat(day).replace(hour=8, minute=30, tzinfo=UTC)
        drawn += timedelta(minutes=random.randrange(120))

        def tube(kind: str) -> dict:
            spun = drawn + timedelta(hours=1)
            return {
                "tube_type": kind,
                "collected_at": drawn.isoformat(),
                "received_at": (drawn + timedelta(minutes=20)).isoformat(),
                "spun_at": spun.isoformat(),
                "spin": {"temperature_c": 20.0, "force_g": 2000, "minutes": 10},
                "frozen_at": (spun + timedelta(minutes=30)).isoformat(),
            }

        body = {"participant": participant, "visit": visit, "tubes": [tube("SST"), tube("EDTA")]}
        with self.client.post(
            "/api/v1/specimens",
            json=body,
            headers=self._headers(),
            name="register",
            catch_response=True,
        ) as response:
            self._check(response, 201)


class Manager(_Base):
    """Reads chains of custody."""

    fixed_count = 0
    queue: deque = deque()

    def on_start(self) -> None:
        self.token = Manager.queue.popleft()["token"]
        stagger(PLAN["pacing"]["reader"])

    @task
    def custody(self) -> None:
        code = random.choice(PLAN["codes"])
        with self.client.get(
            f"/api/v1/aliquots/{code}/custody",
            headers=self._headers(),
            name="custody",
            catch_response=True,
        ) as response:
            self._check(response, 200)


class Researcher(_Base):
    """Follows its own requests (a researcher sees no chain of custody: no participant-level
    access)."""

    fixed_count = 0
    queue: deque = deque()

    def on_start(self) -> None:
        work = Researcher.queue.popleft()
        self.token = work["token"]
        self.requests = work["requests"]
        stagger(PLAN["pacing"]["reader"])

    @task
    def request_status(self) -> None:
        number = random.choice(self.requests)
        with self.client.get(
            f"/api/v1/requests/{number}",
            headers=self._headers(),
            name="request",
            catch_response=True,
        ) as response:
            self._check(response, 200)


class Scanner(_Base):
    """Only scan lookups (--scan-only)."""

    fixed_count = 0
    queue: deque = deque()

    def on_start(self) -> None:
        self.token = Scanner.queue.popleft()["token"]
        stagger(PLAN["pacing"]["technician"])

    @task
    def lookup(self) -> None:
        self.scan()


class Probe(FastHttpUser):
    """The constant endpoint, at the technicians' pace, under the same load: the baseline."""

    fixed_count = 1

    def on_start(self) -> None:
        stagger(PLAN["pacing"]["technician"])

    @task
    def health(self) -> None:
        with self.client.get("/api/v1/health", name="health", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(str(response.status_code))


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        PLAN.update(json.load(handle))
    with open(PLAN["codes_file"], encoding="utf-8") as handle:
        PLAN["codes"] = handle.read().split()
    PLAN["exhausted"] = 0
    random.seed(PLAN["seed"])
    classes = [Probe]
    if PLAN["mode"] == "scan-only":
        Scanner.queue = deque(PLAN["scanners"])
        Scanner.fixed_count = len(Scanner.queue)
        classes.append(Scanner)
    else:
        Technician.queue = deque(PLAN["technicians"])
        Manager.queue = deque(PLAN["managers"])
        Researcher.queue = deque(PLAN["researchers"])
        Technician.fixed_count = len(Technician.queue)
        Manager.fixed_count = len(Manager.queue)
        Researcher.fixed_count = len(Researcher.queue)
        classes += [Technician, Manager, Researcher]
    pacing = PLAN["pacing"]
    # Each user starts one request every so many seconds on average (or at once when the
    # last took longer): the mix holds whatever the answers' times.
    for kind in (Technician, Scanner, Probe):
        kind.wait_time = paced(pacing["technician"])
    for kind in (Manager, Researcher):
        kind.wait_time = paced(pacing["reader"])
    users = sum(c.fixed_count for c in classes)
    environment = Environment(user_classes=classes, host=PLAN["host"], events=events)
    runner = environment.create_local_runner()
    started = time.monotonic()
    MEASURING["from"] = started + PLAN["warmup"]
    runner.start(users, spawn_rate=users)
    limit = PLAN["max_requests"]
    end = MEASURING["from"] + PLAN["seconds"]
    while time.monotonic() < end and len(SEEN) < limit:
        gevent.sleep(0.1)
    measured = min(time.monotonic(), end) - MEASURING["from"]
    MEASURING["from"] = float("inf")
    runner.quit()
    print(
        json.dumps(
            {
                "requests": SEEN,
                "measured_s": round(measured, 3),
                "users": {c.__name__: c.fixed_count for c in classes},
                "registration_slots_exhausted": PLAN["exhausted"],
                "stopped_by_request_cap": len(SEEN) >= limit,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
