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
    # Aliquot barcode generation retries when a random code is already taken.
    BARCODE_ATTEMPTS = 8


def from_environment() -> dict:
    """Settings taken from environment variables, for containers and CI."""
    settings: dict = {}
    for name in ("SECRET_KEY", "BIOBANK_ENV", "PROTOCOL_FILE"):
        if os.environ.get(name):
            settings[name] = os.environ[name]
    if os.environ.get("DATABASE_URL"):
        settings["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    return settings


def default_database_uri(instance_path: str) -> str:
    return "sqlite:///" + str(Path(instance_path) / "biobank.sqlite3")
