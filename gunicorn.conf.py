"""gunicorn settings for serving the biobank.

Run, from the repository's top level:

    .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app

behind a reverse proxy (nginx, Apache) that terminates HTTPS (ops/ holds an nginx site and
systemd units). Environment variables override the defaults below:

    GUNICORN_BIND              where to listen (127.0.0.1:8000: only the proxy on this
                               machine reaches it)
    GUNICORN_WORKERS           worker processes (one per CPU, at least 2, at most 8)
    GUNICORN_THREADS           threads per worker (4)
    GUNICORN_REQUEST_TIMEOUT   seconds one request may run before its worker is stopped
                               and replaced (60; see "The request deadline" below)
    GUNICORN_TIMEOUT           seconds a worker may stay silent (no heartbeat) before
                               the arbiter kills it (30)
    GUNICORN_GRACEFUL_TIMEOUT  seconds given to requests under way on a restart (60)
    GUNICORN_MAX_REQUESTS      requests a worker serves before it is replaced (1000)
    GUNICORN_ACCESS_LOG        "-" (standard output, the default), a file, or "" for none
    GUNICORN_CONTROL_SOCKET    a path for gunicornc's control socket (none by default)

A value that is not a whole number within its bounds stops gunicorn at start, naming the
variable.

The size of a request body is capped by the application (MAX_CONTENT_LENGTH, 16 MB):
the proxy's own limit is the same (ops/nginx/biobank.conf: client_max_body_size 16m), so
a larger upload is refused before it reaches a worker.

The request deadline
--------------------
With threads, gunicorn's own `timeout` only notices a worker that stopped answering the
arbiter (its main loop stuck); a request running for ever in one of its threads goes
unnoticed. So each worker keeps the start of every request it serves, and a watchdog
thread looks at them every second. When one has run past GUNICORN_REQUEST_TIMEOUT, it is
logged (method, path, request id, how long), the worker stops taking connections, lets
its other requests finish (for GUNICORN_GRACEFUL_TIMEOUT at most), then ends its process
at once; the arbiter starts a fresh worker in its place. The runaway request's client
gets no answer (nginx says 502), its transaction is rolled back by the database when the
connection drops, and memory it held goes back to the system.

The trade-off: a thread cannot be stopped alone in Python, so the runaway request runs on
while the worker's other requests finish (at most GUNICORN_GRACEFUL_TIMEOUT more), and a
request still running when that wait ends is cut with it. Keep the deadline above the
longest legitimate request: applying a centre's 50,000-tube inventory takes about 20 s on
two cores (bench/inventory.py), and a shared machine can be twice as slow.

The numbers
-----------
2 workers × 4 threads on a 2-core machine. Each worker is one process with its own
memory (about 210 MB, the code's pages shared) and its own database pool (5 connections,
10 more on demand), so threads ≤ 15 and workers × threads stays well below
PostgreSQL's max_connections (100): 8 workers × 4 threads use at most 32. Threads mostly
wait on the database; a scrypt password check or a curve fit holds a core, which is why
there are as many processes as cores. At least 2 workers keep the site answering while
one is being replaced.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from gunicorn import glogging

# The application's log line (biobank/logs.py): time, level, logger, [request id, user],
# message. gunicorn's own lines and the access log use it too, so that one parser reads
# all of them (tests/test_ops_files.py checks the two stay the same).
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(user)s] %(message)s"


def _number(name: str, default: int, *, least: int, most: int | None = None) -> int:
    """A whole number from the environment variable ``name``, or ``default``; anything
    else stops gunicorn with a message naming the variable."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    bounds = f"at least {least}" if most is None else f"from {least} to {most}"
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < least or (most is not None and number > most):
        raise SystemExit(f"gunicorn.conf.py: {name} must be a whole number {bounds}, not {value!r}")
    return number


def _cpus() -> int:
    """The CPUs this process may run on (a container's or a systemd unit's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


bind = os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"

# Threads in every worker, even with GUNICORN_THREADS=1, so that the request deadline
# below always applies.
worker_class = "gthread"
workers = _number("GUNICORN_WORKERS", min(max(2, _cpus()), 8), least=1, most=64)
threads = _number("GUNICORN_THREADS", 4, least=1, most=15)

# Seconds one request may run (see "The request deadline" above).
REQUEST_TIMEOUT = _number("GUNICORN_REQUEST_TIMEOUT", 60, least=1)
# Seconds a worker may fail to tell the arbiter it is alive before it is killed: a worker
# whose main loop is stuck (its threads still run requests).
timeout = _number("GUNICORN_TIMEOUT", 30, least=1)
# On a restart, a reload, or a request past its deadline, the time given to requests
# under way to finish: as long as one may run. systemd's TimeoutStopSec must exceed it.
graceful_timeout = _number("GUNICORN_GRACEFUL_TIMEOUT", REQUEST_TIMEOUT, least=1)
keepalive = 5

# A fresh worker now and then returns to the system the memory a large file left behind
# (Python keeps what it once held); the jitter keeps the workers from restarting together.
max_requests = _number("GUNICORN_MAX_REQUESTS", 1000, least=1)
max_requests_jitter = max(1, max_requests // 10)

# The application is imported once, by the arbiter, before it forks the workers: a worker
# replaced (max_requests, a request past its deadline, a crash) is a fork of a few
# milliseconds, not a fresh import of about 3 s of a core taken from the workers still
# serving; two workers replaced together no longer leave nobody answering for those
# seconds (bench/load.py saw a 2.3 s p99). The workers share the imported code's memory
# until they write to it. The trade-off: a reload (HUP) forks new workers from the code
# already loaded, so a new release is put in service by a restart
# (ops/systemd/biobank.service). A process forked from the application opens its own
# database connections (biobank/__init__.py).
preload_app = True

# The request line and headers a client may send: a long search or filter URL fits, an
# endless one does not. (The body is capped by MAX_CONTENT_LENGTH in the application.)
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# gunicornc's control socket, only where asked for: gunicorn's default place is shared by
# every gunicorn of the account.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip() or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()


# --- logs ---------------------------------------------------------------------------------

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
# The message of an access line; the line around it is FORMAT, with the request id the
# application answered with (X-Request-ID). Paths only: a query may carry what was typed.
access_log_format = '%(m)s %(U)s %(s)s %(b)s bytes %(M)sms client %(h)s "%(a)s"'


class Logger(glogging.Logger):
    """gunicorn's logger writing the application's line (FORMAT): its own messages with
    no request, each access line with the request id the application gave."""

    def setup(self, cfg):
        super().setup(cfg)
        formatter = logging.Formatter(FORMAT, defaults={"request_id": "-", "user": "-"})
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(formatter)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        try:
            self.access_log.info(
                self.cfg.access_log_format,
                atoms,
                extra={"request_id": atoms["{x-request-id}o"], "user": "-"},
            )
        except Exception:
            self.exception("access log line failed")


logger_class = Logger


# --- the request deadline -----------------------------------------------------------------


class RequestDeadline:
    """The requests a worker is serving, each with its start, and which ran too long.

    ``clock`` gives seconds (time.monotonic); one instance per worker process."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._running: dict[int, tuple[float, str]] = {}

    def started(self, key: int, what: str) -> None:
        with self._lock:
            self._running[key] = (self.clock(), what)

    def finished(self, key: int) -> None:
        with self._lock:
            self._running.pop(key, None)

    def overdue(self) -> tuple[int, str, float] | None:
        """The request running longest, when past the deadline: (key, what, seconds)."""
        now = self.clock()
        with self._lock:
            running = sorted(self._running.items(), key=lambda item: item[1][0])
        if running:
            key, (start, what) = running[0]
            if now - start > self.seconds:
                return key, what, now - start
        return None

    def others(self, key: int) -> set[int]:
        """The requests under way besides ``key``."""
        with self._lock:
            return set(self._running) - {key}


_deadline: RequestDeadline | None = None


def post_worker_init(worker):
    global _deadline
    _deadline = RequestDeadline(REQUEST_TIMEOUT)
    threading.Thread(
        target=_watch, args=(worker, _deadline), name="request-deadline", daemon=True
    ).start()


def pre_request(worker, req):
    if _deadline is not None:
        request_id = next((v for k, v in req.headers if k.upper() == "X-REQUEST-ID"), "-")
        _deadline.started(threading.get_ident(), f"{req.method} {req.path} ({request_id})")


def post_request(worker, req, environ, resp):
    if _deadline is not None:
        _deadline.finished(threading.get_ident())


def _watch(worker, deadline: RequestDeadline) -> None:
    """Every second: a request past its deadline stops the worker (see the top)."""
    while True:
        time.sleep(1)
        late = deadline.overdue()
        if late is None:
            continue
        key, what, seconds = late
        others = deadline.others(key)
        worker.log.critical(
            "request %s still running after %.0f s (GUNICORN_REQUEST_TIMEOUT=%d): worker "
            "%d stops, after its %d other request(s) under way",
            what,
            seconds,
            deadline.seconds,
            os.getpid(),
            len(others),
        )
        # A graceful stop: no new connection; the arbiter starts a worker when this ends.
        os.kill(os.getpid(), signal.SIGTERM)
        end = time.monotonic() + worker.cfg.graceful_timeout
        while deadline.others(key) & others and time.monotonic() < end:
            time.sleep(0.1)
        worker.log.critical("worker %d ends: request %s cut", os.getpid(), what)
        for handler in (*worker.log.error_log.handlers, *worker.log.access_log.handlers):
            handler.flush()
        sys.stderr.flush()
        # Not sys.exit: the interpreter would wait for the runaway thread to end.
        os._exit(1)


# --- Prometheus metrics (biobank/metrics/) -------------------------------------------------
# The workers add up their request counts through files in PROMETHEUS_MULTIPROC_DIR
# (prometheus-client's multiprocess mode): the folder the environment names, or else a
# temporary folder made at start and removed when gunicorn stops. At start the folder is
# emptied of the files of an earlier run (their counts would be added to this run's);
# when a worker ends, its live values are dropped (child_exit). prometheus-client reads
# the variable when it is first imported, and the application is preloaded right after
# this file is read: so the folder is settled here, as the file is read.

_METRICS_TEMPORARY = "_BIOBANK_METRICS_TEMPORARY_DIR"


def _metrics_folder() -> str:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if not folder:
        import tempfile

        folder = tempfile.mkdtemp(prefix="biobank-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        os.environ[_METRICS_TEMPORARY] = folder
    os.makedirs(folder, exist_ok=True)
    return folder


_metrics_folder()


def _metrics_files(folder: str) -> list[str]:
    """prometheus-client's own files in ``folder``: counter_<pid>.db, gauge_<mode>_<pid>.db,
    histogram_<pid>.db, summary_<pid>.db (nothing else there is touched)."""
    import re

    name = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")
    return [f for f in os.listdir(folder) if name.fullmatch(f)]


def on_starting(server):
    # After the preload: the arbiter's own values go too (it serves no request; each
    # worker, a fork, starts its own files).
    folder = _metrics_folder()
    for name in _metrics_files(folder):
        os.remove(os.path.join(folder, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and os.environ.get(_METRICS_TEMPORARY) == folder:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
