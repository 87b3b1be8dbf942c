"""The biobank application. ``create_app`` builds it; wsgi.py serves it."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import weakref
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, g, has_request_context, request
from flask_login import current_user
from werkzeug.security import safe_join

from biobank import headers, inputs, metrics, transaction
from biobank.auth import throttle
from biobank.cli import register_commands
from biobank.config import Defaults, default_database_uri, from_environment
from biobank.errors import register_error_handlers
from biobank.extensions import api, csrf, db, login_manager, migrate
from biobank.i18n import init_babel
from biobank.logs import init_logging
from biobank.secret_key import signing_key
from biobank.transaction import request_writes
from biobank.web import panels

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _own_connections_after_fork(engines) -> None:
    """A process forked from this one (gunicorn's workers, forked from the arbiter that
    preloaded the application) opens its own database connections: two processes on one
    connection would interleave their conversations with the server. The parent keeps
    its own (close=False). Weak references: a test session makes many applications."""
    held = [weakref.ref(engine) for engine in engines]

    def forget_inherited() -> None:
        for ref in held:
            engine = ref()
            if engine is not None:
                engine.dispose(close=False)

    os.register_at_fork(after_in_child=forget_inherited)


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(from_environment())
    app.config.update(config or {})
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = default_database_uri(app.instance_path)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A server that restarts leaves dead connections in the pool.
        options = {"pool_pre_ping": True, **app.config["SQLALCHEMY_ENGINE_OPTIONS"]}
        if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
            # A server that does not answer at all (host down, packets dropped) refuses the
            # request in seconds (503), instead of holding a worker thread until the deadline.
            options["connect_args"] = {
                "connect_timeout": app.config["DATABASE_CONNECT_TIMEOUT_SECONDS"],
                **options.get("connect_args", {}),
            }
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    # Never a default key: the one configured, or the instance's own (secret_key.py).
    app.config["SECRET_KEY"] = signing_key(app.config, app.instance_path)

    # Every request counted and timed for /metrics: its clock starts before any other hook.
    metrics.init_app(app)
    init_logging(app)
    # Before any other check reads the request, and before the blueprints' rules are built.
    inputs.install(app)
    # Security headers on every answer (registered before the transaction's after_request,
    # so they run after it, on whatever answer it leaves); HTTPS and proxies.
    headers.init_app(app)
    # Failed sign-ins counted per account and address; password checks bounded.
    throttle.init_app(app)
    db.init_app(app)
    with app.app_context():
        _tune_sqlite(app)
        _own_connections_after_fork(db.engines.values())
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    _init_login(app)
    csrf.init_app(app)
    init_babel(app)
    api.init_app(app)
    _register_blueprints(app)
    _connect_domains()
    app.jinja_env.globals["panels"] = panels
    _version_static_files(app)
    register_error_handlers(app)
    _unit_of_work(app)
    register_commands(app)
    return app


def _version_static_files(app: Flask) -> None:
    """Name each static file with its content's hash (``/static/app.css?v=…``): the proxy
    may then keep it a year (ops/nginx/biobank.conf), and a new release's file has a new
    address. Hashed once per file and process, every time in debug mode."""
    versions: dict[str, str] = {}

    @app.url_defaults
    def static_version(endpoint: str, values: dict) -> None:
        filename = values.get("filename")
        if endpoint != "static" or not filename or "v" in values:
            return
        version = None if app.debug else versions.get(filename)
        if version is None:
            path = safe_join(app.static_folder, filename)
            try:
                version = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
            except (OSError, TypeError):  # no such file: the address stays as asked
                return
            versions[filename] = version
        values["v"] = version


def _tune_sqlite(app: Flask) -> None:
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        busy_ms = app.config["SQLITE_BUSY_TIMEOUT_MS"]  # read per connection: settable
        # Let SQLAlchemy, not the driver, open transactions (see on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection):
        # A transaction that may write takes the write lock at its start: a deferred one
        # that reads and then writes fails at once with "database is locked" when another
        # writer got there first, instead of waiting its turn as PostgreSQL's row locks
        # would. Page and API reads (GET) never write, so they start deferred and do not
        # queue behind writers (WAL lets readers run beside one writer).
        read_only = has_request_context() and not request_writes()
        # Straight to the driver: every request pays this, SQLAlchemy's statement
        # machinery would cost more than the BEGIN itself.
        statement = "BEGIN" if read_only else "BEGIN IMMEDIATE"
        try:
            connection.connection.driver_connection.execute(statement)
        except sqlite3.OperationalError as err:  # locked past the busy timeout
            # Said as SQLAlchemy says the driver's errors, so that every handler of a
            # database that went away (503, nothing saved) handles this one too.
            raise sa.exc.OperationalError(statement, None, err) from err


def _init_login(app: Flask) -> None:
    import biobank.auth.access  # noqa: F401  (registers the loaders)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"


def _register_blueprints(app: Flask) -> None:
    from biobank.assays.api import blp as assays_api
    from biobank.assays.views import bp as assay_views
    from biobank.auth.api import blp as auth_api
    from biobank.auth.views import bp as auth_views
    from biobank.distribution.api import blp as distribution_api
    from biobank.distribution.shipment_views import bp as shipment_views
    from biobank.distribution.views import bp as distribution_views
    from biobank.exports.views import bp as export_views
    from biobank.fhir.api import bp as fhir_api
    from biobank.inventory.views import bp as inventory_views
    from biobank.monitoring.api import blp as monitoring_api
    from biobank.monitoring.outcome_api import blp as outcome_api
    from biobank.monitoring.outcome_views import bp as outcome_views
    from biobank.monitoring.views import bp as monitoring_views
    from biobank.notifications.views import bp as notifications_views
    from biobank.printing.api import blp as printing_api
    from biobank.printing.views import bp as printing_views
    from biobank.samples.api import blp as samples_api
    from biobank.samples.views import bp as samples_views
    from biobank.storage.api import blp as storage_api
    from biobank.storage.rack_views import bp as rack_views
    from biobank.storage.views import bp as storage_views
    from biobank.study.api import blp as study_api
    from biobank.study.views import bp as study_views

    page_blueprints = (
        auth_views,
        study_views,
        samples_views,
        storage_views,
        rack_views,
        printing_views,
        distribution_views,
        shipment_views,
        assay_views,
        notifications_views,
        monitoring_views,
        outcome_views,
        inventory_views,
        export_views,
    )
    for blueprint in page_blueprints:
        app.register_blueprint(blueprint)
    # FHIR is read-only JSON for other systems, authenticated by bearer tokens.
    # Prometheus metrics: a GET for monitoring, outside the session and CSRF machinery.
    from biobank.metrics.views import bp as metrics_views

    csrf.exempt(metrics_views)
    app.register_blueprint(metrics_views)
    csrf.exempt(fhir_api)
    app.register_blueprint(fhir_api)
    for blueprint in (
        auth_api,
        study_api,
        samples_api,
        storage_api,
        printing_api,
        distribution_api,
        assays_api,
        monitoring_api,
        outcome_api,
    ):
        # The API is protected by bearer tokens; a browser session using it is checked
        # for CSRF in _unit_of_work's before_request instead.
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint, url_prefix="/api/v1")


def _connect_domains() -> None:
    # A scan (samples) shows where the tube is, which storage, a domain above it, knows.
    from biobank.samples.services import set_location_column
    from biobank.storage.services import location_column

    set_location_column(location_column)
    # A box, rack or freezer label scanned where a tube was expected is named as such.
    from biobank.samples.services import add_code_resolver
    from biobank.storage.services import scanned_container

    add_code_resolver(scanned_container)
    # A reserved aliquot leaves storage only for its request (distribution, above storage).
    from biobank.distribution.services import reservation_guard
    from biobank.storage.services import add_take_out_guard

    add_take_out_guard(reservation_guard)
    # The box map shows which request holds a reserved tube (distribution, above storage).
    from biobank.distribution.services import reserved_for
    from biobank.storage.services import add_reservation_lookup

    add_reservation_lookup(reserved_for)
    # Assay results on the aliquot and participant pages (assays sits above both).
    from biobank.assays.views import register_panels

    register_panels()
    # The shipments an aliquot travelled in, on its page (distribution sits above samples).
    from biobank.distribution.shipment_views import register_panels as shipment_panels

    shipment_panels()
    # The primary outcome's readiness on the participant page (monitoring sits above study).
    from biobank.monitoring.outcome_views import register_panels as outcome_panels

    outcome_panels()
    # Each role's work, counted, at the top of the home page (auth's page; monitoring
    # sits above every domain it counts).
    from biobank.monitoring.worklists import home_panel
    from biobank.web import add_panel

    add_panel("home", home_panel)


def _unit_of_work(app: Flask) -> None:
    """One request, one transaction (biobank/transaction.py)."""

    @app.before_request
    def protect_api_sessions():
        # A browser's session cookie is sent by any page that posts to us: changes made
        # through the API with a session need the CSRF token; bearer tokens do not.
        if (
            request.path.startswith("/api/")
            and request.method in UNSAFE_METHODS
            and current_user.is_authenticated
            and not g.get("authenticated_by_token")
        ):
            csrf.protect()

    transaction.install(app)
