"""Default settings. instance/config.py, then environment variables, override them."""

from __future__ import annotations

import os
from pathlib import Path

DEVELOPMENT_NAMES = frozenset({"development", "dev", "testing", "test"})


class Defaults:
    # No default key: a key set in instance/config.py, the SECRET_KEY environment variable
    # or create_app's settings is used when it has at least 32 bytes; without one, a
    # random key is generated at the first start and kept in instance/secret_key
    # (biobank/secret_key.py).
    SECRET_KEY: str | None = None
    # Any other value than development, dev, testing or test (in any case) is production:
    # HTTPS is then on unless set off.
    BIOBANK_ENV = "development"
    # Served over HTTPS: the session and remember-me cookies are marked Secure and every
    # answer carries Strict-Transport-Security (biobank/headers.py). None: on in
    # production, off in development (http://127.0.0.1 would lose its cookies).
    HTTPS: bool | None = None
    # How many reverse proxies in front of the application set X-Forwarded-For, -Proto,
    # -Host and -Port: 1 for nginx or Apache in front of gunicorn (ops/nginx). 0 ignores
    # the headers (anyone could send them). The sign-in throttle counts failures per client address,
    # and a request is seen to have come over HTTPS, only through them behind a proxy.
    PROXY_HOPS = 0

    SQLALCHEMY_DATABASE_URI: str | None = None  # set in create_app from DATABASE_URL
    # pool_pre_ping (a SELECT 1 before each checkout, for servers that restart) is set for
    # server databases in create_app; an SQLite file has no connection to lose.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    SQLITE_BUSY_TIMEOUT_MS = 15000
    # A request that could not reach the database (it went away, or SQLite's write lock
    # stayed taken) is answered 503, nothing saved, with Retry-After: this many seconds.
    # A read (GET) that lost its connection half-way is first run once more by itself.
    DATABASE_RETRY_AFTER_SECONDS = 5
    # How long opening a PostgreSQL connection may take before the request is refused (503).
    DATABASE_CONNECT_TIMEOUT_SECONDS = 5

    # One line per request and per refused rule at INFO (biobank/logs.py); WARNING keeps
    # only what went wrong.
    LOG_LEVEL = "INFO"

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    # The lowest zxcvbn score (0-4) a new password may have: 3 resists an offline attack
    # on a stolen hash for a long while; 2 and below fall to common-password lists.
    PASSWORD_MIN_SCORE = 3
    WTF_CSRF_TIME_LIMIT = 8 * 3600  # a bench shift, so a form left open still submits

    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
    LANGUAGES = {"en": "English", "fr": "Français"}

    # The trial protocol loaded by `flask protocol load` without a file.
    PROTOCOL_FILE: str | None = None
    # The language of the protocol's own words (arm, visit and tube names): the trial's.
    PROTOCOL_LANGUAGE = "en"

    API_TITLE = "Biobank API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"

    PAGE_SIZE_MAX = 1000
    # The catalogue shows counts of fewer participants than this (zero included) as "< n"
    # to those who may not see participant-level data, and other counts as ranges of
    # CATALOGUE_ROUNDING_BASE ("5–9", "10–14"), so that no count can be worked out from
    # two others (biobank/distribution/disclosure.py). At least 3, and the base at least
    # the threshold − 1: 5 also keeps the three disease statuses of one cell from being
    # worked out from their unions.
    CATALOGUE_SMALL_CELL = 5
    CATALOGUE_ROUNDING_BASE = 5
    # Aliquot barcode generation retries when a random code is already taken.
    BARCODE_ATTEMPTS = 8

    # Which accepted result of a participant's visit (per analyte and sample type) is the
    # reportable one when an aliquot is measured again (biobank/assays/reportable.py): the
    # steps tried in order, the first that tells the two values apart deciding:
    #   "requested"  a re-assay imported with a reason, or a dilution repeat (the value
    #                was >ULOQ and the new one was read at a higher dilution), supersedes;
    #   "in_range"   a value within the calibrated range beats a flagged one (<LLOQ,
    #                >ULOQ, "<"/">"), a flagged one beats no result;
    #   "latest"     the later run supersedes (never asks).
    # When no step decides, the manager accepting the run chooses. A result never loses
    # to a sample that gave no result.
    ASSAY_REPORTABLE_RULE = ("requested", "in_range")

    # Notifications are rows of the outbox first. "outbox" keeps them there (no e-mail on
    # the hospital machines); "smtp" delivers them through MAIL_SERVER.
    NOTIFIER = "outbox"
    MAIL_SERVER: str | None = None
    MAIL_PORT = 25
    MAIL_SENDER: str | None = None  # the From address, e.g. biobank@chu-example.fr
    MAIL_USERNAME: str | None = None  # None: the server takes mail without logging in
    MAIL_PASSWORD: str | None = None
    MAIL_STARTTLS = False
    MAIL_SSL = False  # SSL from the first byte (port 465); excludes MAIL_STARTTLS
    MAIL_TIMEOUT = 10  # seconds per message
    # A message whose delivery failed is tried again after NOTIFY_RETRY_BASE_SECONDS,
    # then after twice as long at each failure, never waiting more than
    # NOTIFY_RETRY_MAX_SECONDS; after NOTIFY_MAX_ATTEMPTS attempts delivery gives up and
    # the message stays in the outbox, failed (counted on the managers' worklist).
    # The defaults try 8 times over about two hours.
    NOTIFY_MAX_ATTEMPTS = 8
    NOTIFY_RETRY_BASE_SECONDS = 60
    NOTIFY_RETRY_MAX_SECONDS = 3600

    # Prometheus metrics at /metrics (biobank/metrics/): answered to the addresses or
    # networks listed ("10.0.0.0/8" too), as the application sees them (behind a proxy,
    # set PROXY_HOPS so that it sees the client's), or to a request carrying
    # "Authorization: Bearer <METRICS_TOKEN>" (at least 16 characters; None: no token);
    # anyone else gets the "not found" page of an unknown address.
    METRICS_ALLOWED_ADDRESSES = ["127.0.0.1", "::1"]
    METRICS_TOKEN: str | None = None

    # Sign-in throttling (biobank/auth/throttle.py): failed sign-ins are counted per
    # account and per client address in moving windows, each limit "N per minute|hour|day"
    # (several separated by ";" make the wait grow; empty: none), kept in a storage of the
    # `limits` library: memory:// counts inside one process (with several worker processes
    # each counts alone, so the limits are multiplied by their number); redis://host:6379
    # shares the counts between all workers and machines. The database is not a storage
    # `limits` can use. RATELIMIT_STORAGE_OPTIONS go to the storage (e.g. Redis timeouts).
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_STORAGE_OPTIONS: dict = {}
    LOGIN_LIMITS_PER_ACCOUNT = "5 per minute; 20 per hour; 100 per day"
    LOGIN_LIMITS_PER_ADDRESS = "20 per minute; 100 per hour"
    # Password checks (scrypt: about 0.1 s of a core and 32 MB each) running at once in
    # one process. A sign-in waits at most PASSWORD_CHECK_WAIT seconds for its turn and is
    # then asked to try again: failed sign-ins never take every core or worker thread.
    PASSWORD_CHECKS_AT_ONCE = 2
    PASSWORD_CHECK_WAIT = 2.0

    # The largest request body, files included: a larger upload is refused (413) before
    # it is read. A plate reader export or a plate map is tens of kilobytes; a study's
    # result sheet a few megabytes.
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024
    # What one uploaded spreadsheet or CSV file may hold (biobank/uploads.py); reading
    # stops at the first cap exceeded. A 96/384-well plate export with its metadata is a
    # few hundred rows of a few dozen columns; a laboratory's result sheet for a whole
    # study a few tens of thousands of rows of about ten columns; a centre's inventory
    # of 50,000 tubes, one per row, 50,001 rows with its header (room is left for notes).
    UPLOAD_MAX_SHEETS = 20
    UPLOAD_MAX_ROWS = 60_000
    UPLOAD_MAX_COLUMNS = 200
    UPLOAD_MAX_CELLS = 1_000_000  # cells looked at in the whole file, empty ones included
    # An .xlsx is a zip: what its parts may unpack to, in all, and how many times smaller
    # than its content a large part may be packed (spreadsheets pack 5 to 30 times;
    # a "zip bomb" thousands of times).
    UPLOAD_MAX_UNZIPPED_BYTES = 64 * 1024 * 1024
    UPLOAD_MAX_ZIP_RATIO = 100
    # A .csv/.txt file: its size, and the longest line (in characters).
    UPLOAD_MAX_TEXT_BYTES = 16 * 1024 * 1024
    UPLOAD_MAX_LINE_LENGTH = 256 * 1024


def from_environment() -> dict:
    """Settings taken from environment variables, for containers and CI."""
    settings: dict = {}
    names = ("SECRET_KEY", "BIOBANK_ENV", "PROTOCOL_FILE", "LOG_LEVEL", "RATELIMIT_STORAGE_URI")
    names += ("METRICS_TOKEN",)
    mail = ("NOTIFIER", "MAIL_SERVER", "MAIL_SENDER", "MAIL_USERNAME", "MAIL_PASSWORD")
    for name in names + mail:
        if os.environ.get(name):
            settings[name] = os.environ[name]
    if os.environ.get("MAIL_PORT"):
        try:
            settings["MAIL_PORT"] = int(os.environ["MAIL_PORT"])
        except ValueError:
            raise RuntimeError(
                f"MAIL_PORT must be a port number, not {os.environ['MAIL_PORT']!r}."
            ) from None
    if os.environ.get("MAX_CONTENT_LENGTH"):
        try:
            settings["MAX_CONTENT_LENGTH"] = int(os.environ["MAX_CONTENT_LENGTH"])
        except ValueError:
            raise RuntimeError(
                "MAX_CONTENT_LENGTH must be a number of bytes (16777216 for 16 MB), not "
                f"{os.environ['MAX_CONTENT_LENGTH']!r}."
            ) from None
    if os.environ.get("PROXY_HOPS"):
        try:
            settings["PROXY_HOPS"] = int(os.environ["PROXY_HOPS"])
        except ValueError:
            raise RuntimeError(
                "PROXY_HOPS must be the number of reverse proxies in front of the "
                f"application (1 behind nginx), not {os.environ['PROXY_HOPS']!r}."
            ) from None
        if settings["PROXY_HOPS"] < 0:
            raise RuntimeError(f"PROXY_HOPS cannot be negative ({settings['PROXY_HOPS']}).")
    if os.environ.get("METRICS_ALLOWED_ADDRESSES") is not None:
        # Separated by commas or spaces; set and empty: no address, the token only.
        listed = os.environ["METRICS_ALLOWED_ADDRESSES"].replace(",", " ").split()
        settings["METRICS_ALLOWED_ADDRESSES"] = listed
    if os.environ.get("DATABASE_URL"):
        settings["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    return settings


def default_database_uri(instance_path: str) -> str:
    return "sqlite:///" + str(Path(instance_path) / "biobank.sqlite3")


def is_production(env: str | None) -> bool:
    """Whether BIOBANK_ENV names production: anything but a development name, so that a
    mistyped or differently spelled value ("Production", "prod", "staging") errs on the
    safe side."""
    return str(env or "").strip().lower() not in DEVELOPMENT_NAMES
