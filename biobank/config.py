"""Default settings. instance/config.py, then environment variables, override them."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SECRET_KEY = "dev-only-not-secret"


class Defaults:
    SECRET_KEY = DEFAULT_SECRET_KEY
    # "production" refuses to start with the default secret key.
    BIOBANK_ENV = "development"

    SQLALCHEMY_DATABASE_URI: str | None = None  # set in create_app from DATABASE_URL
    # pool_pre_ping (a SELECT 1 before each checkout, for servers that restart) is set for
    # server databases in create_app; an SQLite file has no connection to lose.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    SQLITE_BUSY_TIMEOUT_MS = 15000

    # One line per request and per refused rule at INFO (biobank/logs.py); WARNING keeps
    # only what went wrong.
    LOG_LEVEL = "INFO"

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = 8 * 3600  # a bench shift, so a form left open still submits

    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
    LANGUAGES = {"en": "English", "fr": "Français"}

    # The trial protocol loaded by `flask protocol load` without a file.
    PROTOCOL_FILE: str | None = None

    API_TITLE = "Biobank API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"

    PAGE_SIZE_MAX = 1000
    # The catalogue shows counts of fewer participants than this as "< n" to those who may
    # not see participant-level data: a small cell could single a participant out.
    CATALOGUE_SMALL_CELL = 3
    # Aliquot barcode generation retries when a random code is already taken.
    BARCODE_ATTEMPTS = 8

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


def from_environment() -> dict:
    """Settings taken from environment variables, for containers and CI."""
    settings: dict = {}
    names = ("SECRET_KEY", "BIOBANK_ENV", "PROTOCOL_FILE", "LOG_LEVEL")
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
    if os.environ.get("DATABASE_URL"):
        settings["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    return settings


def default_database_uri(instance_path: str) -> str:
    return "sqlite:///" + str(Path(instance_path) / "biobank.sqlite3")
