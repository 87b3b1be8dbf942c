"""Dumping the PostgreSQL database with its custody digest, and the restore drill.

``dump`` runs ``pg_dump -Fc`` from a snapshot that the custody verification and digest
read too, so that the digest filed next to the dump describes exactly what the dump
holds, even while the application keeps writing. ``check`` restores a dump into a scratch
database, checks it there (the migrations, the schema against the models, every custody
chain, the digest filed at dump time) and drops the scratch database, whatever happened.

The custody services read ``db.session``: for the snapshot and the scratch database it
is bound, in an application context of its own, to that connection or database
(``_session_on``), so the caller's session is left untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from biobank.custody import services as custody
from biobank.extensions import db

DIGEST_SUFFIX = ".digest.json"
SCRATCH_PREFIX = "restore_check_"
OK, FAILED, SKIPPED = "OK", "FAILED", "SKIPPED"
# libpq settings a database URL may carry in its query string (a Unix socket's folder as
# ?host=, TLS), given to pg_dump and pg_restore through their environment variables.
_LIBPQ_QUERY = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


class BackupError(Exception):
    """What went wrong, said to the operator with what to do about it."""


# --- the database and the client programs --------------------------------------------


def digest_path_for(dump: Path) -> Path:
    """Where ``dump`` files its digest: FILE.digest.json beside it."""
    dump = Path(dump)
    return dump.with_name(dump.name + DIGEST_SUFFIX)


def postgresql_url(url: str | URL) -> URL:
    """The URL of a PostgreSQL database (with the psycopg driver), or BackupError naming
    what to do instead on SQLite."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        where = parsed.database or ":memory:"
        raise BackupError(
            f"The application's database is SQLite ({where}): `backup` works on PostgreSQL "
            "only. Back an SQLite file up by copying it with the server stopped, or while "
            f"it runs with sqlite3's online backup: sqlite3 {where} \".backup "
            '/backups/biobank-$(date +%F).sqlite3"'
        )
    if backend != "postgresql":
        raise BackupError(f"`backup` works on PostgreSQL databases, not {backend}.")
    if parsed.drivername == "postgresql":  # psycopg (3) is the driver installed
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def client_program(name: str) -> str:
    """The path of a PostgreSQL client program (pg_dump, pg_restore) found on PATH."""
    found = shutil.which(name)
    if not found:
        raise BackupError(
            f"{name} was not found on PATH ({os.environ.get('PATH', '')}): install the "
            "PostgreSQL client programs of the server's major version (Debian: apt-get "
            "install postgresql-client-15), or put their folder on PATH."
        )
    return found


def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump and pg_restore: host, port and user as arguments,
    the password and the URL's other libpq settings through the environment (a password
    on a command line is readable by every user of the machine)."""
    args = []
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    for key, variable in _LIBPQ_QUERY.items():
        value = url.query.get(key)
        if value:
            env[variable] = value if isinstance(value, str) else value[-1]
    # Never wait for a password typed at a terminal (cron has none): fail instead.
    return [*args, "--no-password"], env


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(kept[-lines:]) or "no message"


@contextmanager
def _session_on(bind) -> Iterator[Session]:
    """``db.session`` bound to another engine or connection, in an application context of
    its own (Flask-SQLAlchemy keeps one session per context), so that the services that
    read ``db.session`` read there and the caller's session stays as it was."""
    with current_app.app_context():
        session = Session(bind=bind)
        db.session.registry.set(session)
        try:
            yield session
        finally:
            db.session.remove()


def _revision(connection) -> str | None:
    """The alembic revision a database is at (several heads joined by commas)."""
    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
    return ",".join(sorted(rows)) or None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    """Write ``path`` whole or not at all: a reader never finds half a file."""
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.chmod(partial, 0o644)  # a digest is meant to be read and filed elsewhere
        os.replace(partial, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(partial)
        raise


# --- dump ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DumpResult:
    path: Path
    digest_path: Path
    filed: dict  # what was written to digest_path
    report: custody.VerifyReport


def dump(database_url: str, path: Path) -> DumpResult:
    """``pg_dump -Fc`` of the database into ``path`` (readable by its owner only), and its
    digest beside it: the custody digest, the verification's figures, the alembic
    revision and the dump's SHA-256, all of one snapshot. The dump is kept even when a
    chain is broken (``report.intact`` says so, and the digest file too)."""
    url = postgresql_url(database_url)
    pg_dump = client_program("pg_dump")
    path = Path(path)
    digest_path = digest_path_for(path)
    if not path.parent.is_dir():
        raise BackupError(f"The folder {path.parent} does not exist.")
    args, env = _libpq(url)
    # Written beside FILE under another name, renamed when complete: a failed dump never
    # leaves half a file under the name of a good one.
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with os.fdopen(handle, "wb") as out, tempfile.TemporaryFile() as errors:
            try:
                connection = engine.connect()
            except sa.exc.OperationalError as err:
                raise BackupError(f"Cannot connect to the database: {_tail(str(err), 1)}") from err
            with connection:  # closed without committing: it only read
                # One snapshot for pg_dump and for the digest: what the digest describes
                # is what the dump holds, whatever is written meanwhile.
                connection.exec_driver_sql(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                )
                snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                command = [pg_dump, "--format=custom", f"--snapshot={snapshot}", *args]
                process = subprocess.Popen(
                    [*command, "--dbname", url.database or ""],
                    stdout=out,
                    stderr=errors,
                    env=env,
                )
                try:
                    # Read while pg_dump writes: two processes, one snapshot.
                    with _session_on(connection):
                        report = custody.verify()
                        digest = custody.digest()
                        revision = _revision(connection)
                    returncode = process.wait()
                except sa.exc.DBAPIError as err:
                    raise BackupError(
                        f"Reading the dump's snapshot failed: {_tail(str(err.orig), 1)}"
                    ) from err
                finally:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
            if returncode != 0:
                errors.seek(0)
                message = _tail(errors.read().decode("utf-8", "replace"))
                raise BackupError(f"pg_dump failed (exit {returncode}): {message}")
        os.replace(partial, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    finally:
        engine.dispose()

    filed = {
        **digest.as_dict(),
        "events": report.events,
        "custody_intact": report.intact,
        "first_break": str(report.first_break) if report.first_break else None,
        "alembic_revision": revision,
        "database": url.database,
        "dump_file": path.name,
        "dump_bytes": path.stat().st_size,
        "dump_sha256": _sha256(path),
    }
    _write_json(digest_path, filed)
    return DumpResult(path, digest_path, filed, report)


# --- the restore drill -----------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    status: str  # OK, FAILED, or SKIPPED when an earlier failure kept it from running
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == OK

    def __str__(self) -> str:
        return f"{self.status:<7} {self.name}: {self.detail}"


@dataclass
class Drill:
    dump: Path
    scratch_database: str
    steps: list[Step] = field(default_factory=list)
    aliquots: int | None = None
    events: int | None = None
    digest: str | None = None
    filed_digest: str | None = None
    revision: str | None = None
    kept: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def figures(self) -> dict:
        return {
            "ok": self.ok,
            "dump": str(self.dump),
            "aliquots": self.aliquots,
            "events": self.events,
            "digest": self.digest,
            "filed_digest": self.filed_digest,
            "revision": self.revision,
            "scratch_database": self.scratch_database,
            "kept": self.kept,
            "duration_s": round(self.duration_s, 2),
        }


def scratch_name(dump: Path) -> str:
    """A new database name that says which dump it holds: restore_check_<dump>_<random>."""
    slug = re.sub(r"[^a-z0-9]+", "_", Path(dump).stem.lower()).strip("_")[:36]
    return f"{SCRATCH_PREFIX}{slug + '_' if slug else ''}{secrets.token_hex(4)}"


def _read_digest(path: Path) -> tuple[dict | None, str | None]:
    """The digest filed at dump time, or why there is none to compare with."""
    try:
        filed = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, (f"no digest at {path}: give the one `backup dump` filed with --digest FILE")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"the digest {path} cannot be read: {err}"
    if not isinstance(filed, dict) or not isinstance(filed.get("root"), str):
        return None, f"{path} is not a custody digest (no root)"
    return filed, None


def check(
    dump_path: Path,
    *,
    server_url: str,
    migrations: Path,
    digest_path: Path | None = None,
    metadata: sa.MetaData | None = None,
    keep: bool = False,
    on_step: Callable[[Step], None] | None = None,
) -> Drill:
    """Restore ``dump_path`` into a new scratch database on the server of ``server_url``
    and check it: the dump file against the SHA-256 filed with its digest, the restore,
    its alembic revision against the head of ``migrations``, its schema against the
    models (``metadata``), every custody chain, and its digest against the one filed at
    ``digest_path`` (DUMP.digest.json by default). The scratch database is dropped at
    the end, on failure too, unless ``keep``. ``on_step`` hears each step as it ends."""
    started = time.monotonic()
    dump_path = Path(dump_path)
    digest_path = Path(digest_path) if digest_path else digest_path_for(dump_path)
    if make_url(server_url).get_backend_name() == "sqlite":
        raise BackupError(
            "The restore drill needs a PostgreSQL server and the application's database is "
            "SQLite: name one with --server postgresql+psycopg://USER@HOST/DATABASE (a "
            "role that may create databases)."
        )
    server = postgresql_url(server_url)
    pg_restore = client_program("pg_restore")
    if not dump_path.is_file():
        raise BackupError(f"No dump at {dump_path}.")
    metadata = metadata if metadata is not None else db.metadata
    drill = Drill(dump_path, scratch_name(dump_path))

    def step(name: str, status: str, detail: str) -> None:
        done = Step(name, status, detail)
        drill.steps.append(done)
        if on_step:
            on_step(done)

    filed, digest_problem = _read_digest(digest_path)
    if filed:
        drill.filed_digest = filed["root"]
    _check_file(dump_path, filed, step)

    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    created = False
    try:
        created, restored = _restore(pg_restore, server, admin, dump_path, drill, step)
        if restored:
            _check_restored(server, drill, filed, digest_problem, migrations, metadata, step)
        else:
            for name in ("migrations", "schema", "custody", "digest"):
                step(name, SKIPPED, "not checked: the restore failed")
    finally:
        if created:
            _clean_up(admin, drill, keep, step)
        admin.dispose()
        drill.duration_s = time.monotonic() - started
    return drill


def _check_file(dump_path: Path, filed: dict | None, step) -> None:
    size, sha256 = dump_path.stat().st_size, _sha256(dump_path)
    described = f"{size} bytes, SHA-256 {sha256[:16]}…"
    expected = (filed or {}).get("dump_sha256")
    if filed is None:
        step("dump file", OK, f"{described} (no digest filed to compare it with)")
    elif not expected:
        step("dump file", OK, f"{described} (the digest holds no SHA-256 to compare)")
    elif expected == sha256:
        step("dump file", OK, f"{described}, as filed at dump time")
    else:
        step(
            "dump file",
            FAILED,
            f"{described}, but {expected[:16]}… was filed at dump time "
            f"({filed.get('dump_bytes')} bytes): this is not the file that was dumped",
        )


def _restore(pg_restore, server: URL, admin, dump_path: Path, drill: Drill, step):
    """Create the scratch database and restore the dump into it: (created, restored)."""
    name = drill.scratch_database
    started = time.monotonic()
    try:
        with admin.connect() as connection:
            quoted = connection.dialect.identifier_preparer.quote(name)
            connection.exec_driver_sql(f"CREATE DATABASE {quoted} TEMPLATE template0")
    except sa.exc.DBAPIError as err:
        step(
            "restore",
            FAILED,
            f"cannot create the scratch database {name}: {_tail(str(err.orig), 1)} (the "
            "role needs CREATEDB; or name another server or role with --server)",
        )
        return False, False
    args, env = _libpq(server)
    command = [pg_restore, "--no-owner", "--no-privileges", "--single-transaction"]
    command += ["--exit-on-error", *args, "--dbname", name, str(dump_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        step(
            "restore",
            FAILED,
            f"pg_restore into {name} failed (exit {result.returncode}): {_tail(result.stderr)}",
        )
        return True, False
    step("restore", OK, f"restored into {name} in {time.monotonic() - started:.1f} s")
    return True, True


def _check_restored(server, drill, filed, digest_problem, migrations, metadata, step) -> None:
    engine = sa.create_engine(server.set(database=drill.scratch_database), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _check_migrations(connection, drill, filed, migrations, step)
            _check_schema(connection, metadata, step)
        with _session_on(engine):
            _check_custody(drill, step)
            _check_digest(drill, filed, digest_problem, step)
    finally:
        engine.dispose()


def _check_migrations(connection, drill: Drill, filed: dict | None, migrations, step) -> None:
    try:
        heads = ",".join(sorted(ScriptDirectory(str(migrations)).get_heads()))
        drill.revision = _revision(connection)
    except Exception as err:  # a dump of something else: no alembic_version table
        connection.rollback()
        step("migrations", FAILED, f"cannot read the revision: {_tail(str(err), 1)}")
        return
    at_dump = (filed or {}).get("alembic_revision")
    if drill.revision != heads:
        step(
            "migrations",
            FAILED,
            f"the restored database is at {drill.revision}, the head of {migrations} is "
            f"{heads} (a dump older than this code needs `flask db upgrade` after restoring)",
        )
    elif at_dump and at_dump != drill.revision:
        step("migrations", FAILED, f"at {drill.revision}, but the digest says {at_dump}")
    else:
        step("migrations", OK, f"at {drill.revision}, the head of {migrations}")


def _check_schema(connection, metadata, step) -> None:
    try:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    except Exception as err:
        connection.rollback()
        step("schema", FAILED, f"cannot compare the schema: {_tail(str(err), 1)}")
        return
    if differences:
        shown = "; ".join(_describe(difference) for difference in differences[:5])
        more = f" and {len(differences) - 5} more" if len(differences) > 5 else ""
        step(
            "schema",
            FAILED,
            f"{len(differences)} difference(s) between the models and the restored "
            f"schema: {shown}{more}",
        )
    else:
        step("schema", OK, "the models and the restored schema agree (as `flask db check`)")


def _describe(difference) -> str:
    """One of alembic's differences in a few words: ('add_column', None, 'aliquot', …)."""
    if isinstance(difference, list):  # modify_* differences come as a list of them
        return ", ".join(_describe(item) for item in difference)
    kind, *rest = difference
    names = [
        getattr(item, "name", None) or (item if isinstance(item, str) else None) for item in rest
    ]
    return " ".join([kind, *[name for name in names if name]])[:120]


def _check_custody(drill: Drill, step) -> None:
    try:
        report = custody.verify()
    except Exception as err:
        db.session.rollback()
        step("custody", FAILED, f"cannot verify the chains: {_tail(str(err), 1)}")
        return
    drill.aliquots, drill.events = report.aliquots, report.events
    counted = f"{report.aliquots} aliquots, {report.events} events"
    if report.intact:
        step("custody", OK, f"{counted}, every chain intact")
    else:
        step(
            "custody",
            FAILED,
            f"{counted}: {report.broken_chains} broken chain(s); first: {report.first_break}",
        )


def _check_digest(drill: Drill, filed: dict | None, digest_problem: str | None, step) -> None:
    try:
        restored = custody.digest()
    except Exception as err:
        db.session.rollback()
        step("digest", FAILED, f"cannot compute the digest: {_tail(str(err), 1)}")
        return
    drill.digest = restored.root
    if filed is None:
        step("digest", FAILED, f"root {restored.root[:16]}…, but {digest_problem}")
        return
    when = filed.get("taken_at", "dump time")
    if restored.root == filed["root"] and restored.aliquots == filed.get("aliquots"):
        step(
            "digest",
            OK,
            f"root {restored.root[:16]}… of {restored.aliquots} aliquots, as filed at {when}",
        )
    else:
        step(
            "digest",
            FAILED,
            f"digest mismatch: the restored data gives root {restored.root[:16]}… over "
            f"{restored.aliquots} aliquots, the digest filed at {when} says "
            f"{filed['root'][:16]}… over {filed.get('aliquots')}: custody records changed "
            "after the digest was filed",
        )


def _clean_up(admin, drill: Drill, keep: bool, step) -> None:
    name = drill.scratch_database
    if keep:
        drill.kept = True
        step(
            "cleanup", OK, f"scratch database {name} kept (--keep): DROP DATABASE {name}; when done"
        )
        return
    try:
        with admin.connect() as connection:
            quoted = connection.dialect.identifier_preparer.quote(name)
            force = " WITH (FORCE)" if connection.dialect.server_version_info >= (13,) else ""
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}{force}")
    except sa.exc.DBAPIError as err:
        step(
            "cleanup",
            FAILED,
            f"could not drop the scratch database {name}: {_tail(str(err.orig), 1)}",
        )
        return
    step("cleanup", OK, f"scratch database {name} dropped")
