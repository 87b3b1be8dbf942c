"""gunicorn settings for serving the biobank.

Run, from the repository's top level:

    .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app

behind a reverse proxy (nginx, Apache) that terminates HTTPS. Environment variables
override the defaults below:

    GUNICORN_BIND        where to listen (127.0.0.1:8000: only the proxy on this machine)
    GUNICORN_WORKERS     worker processes (2 per CPU + 1, at most 8)
    GUNICORN_THREADS     threads per worker (1; see "timeout" below before raising it)
    GUNICORN_TIMEOUT     seconds a worker may spend on one request before it is killed
    GUNICORN_ACCESS_LOG  "-" (standard output, the default), a file, or "" for none

The size of a request body is capped by the application (MAX_CONTENT_LENGTH, 16 MB):
set the proxy's own limit to the same (nginx: client_max_body_size 16m), so a larger
upload is refused before it reaches a worker.
"""

import multiprocessing
import os


def _number(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number, not {value!r}") from None


bind = os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"

# Each worker is one process with its own memory: a file that a worker reads cannot take
# the others with it, and a worker killed for its time frees all it held.
workers = _number("GUNICORN_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8))
# With one thread a worker is gunicorn's "sync" worker, which the arbiter kills when one
# request runs past `timeout`. With more threads ("gthread") the timeout only checks that
# the worker is alive, so a runaway request is no longer stopped: keep 1 unless the
# requests are known to be short.
threads = _number("GUNICORN_THREADS", 1)

# The longest an import, an export or a PDF may take. A request still running then is
# killed with its worker (its transaction rolls back) and a fresh worker replaces it.
timeout = _number("GUNICORN_TIMEOUT", 30)
# On a restart or a reload, the time given to requests under way to finish.
graceful_timeout = 30
keepalive = 5

# A fresh worker now and then returns to the system the memory a large file left behind
# (Python keeps what it once held); the jitter keeps the workers from restarting together.
max_requests = 1000
max_requests_jitter = 100

# The request line and headers a client may send: a long search or filter URL fits, an
# endless one does not. (The body is capped by MAX_CONTENT_LENGTH in the application.)
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
