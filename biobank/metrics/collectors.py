"""What a scrape reads now: the database, the instance folder, the connection pool.

The database is read in one short read-only transaction of its own, on a connection of
its own, a handful of statements whatever the size of the bank. When the database does
not answer (down, unreachable, not migrated) the scrape still succeeds: the families it
would have given are absent and ``biobank_scrape_database_up`` is 0.
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta

import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from biobank.custody import verification
from biobank.custody.models import CustodyEvent
from biobank.db import utcnow
from biobank.monitoring.worklists import EXCURSION_DAYS
from biobank.notifications.models import OutboxMessage
from biobank.notifications.services import GAVE_UP
from biobank.samples.models import ALIQUOT_STATUSES, Aliquot
from biobank.storage.services import excursion_events

log = logging.getLogger("biobank.metrics")

# The longest a statement of a scrape may run on PostgreSQL.
STATEMENT_TIMEOUT_MS = 5000


def _sum_where(condition):
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def outbox_query():
    """The outbox's unsent messages, in one statement: waiting for their first attempt,
    failed and waiting to be tried again, given up."""
    unsent = sa.and_(OutboxMessage.sent_at.is_(None), OutboxMessage.gave_up_at.is_(None))
    return sa.select(
        _sum_where(sa.and_(unsent, OutboxMessage.last_error == "")).label("pending"),
        _sum_where(sa.and_(unsent, OutboxMessage.last_error != "")).label("retrying"),
        _sum_where(GAVE_UP).label("failed"),
    ).select_from(OutboxMessage)


def aliquots_query():
    return sa.select(Aliquot.status, sa.func.count()).group_by(Aliquot.status)


def excursions_query(since):
    """Temperature excursions that ended since ``since``, each counted once however many
    tubes it concerned (the rule of the managers' worklist, for the whole bank), and
    when the latest ended."""
    query = sa.select(
        sa.func.count(sa.distinct(CustodyEvent.details)), sa.func.max(CustodyEvent.at)
    )
    return excursion_events(query, since, None)


class DatabaseCollector:
    """The bank's state as the database holds it at the scrape."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def describe(self):
        return []  # nothing is read when the collector is registered

    def _read(self) -> dict:
        now = utcnow()
        with self.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                connection.exec_driver_sql(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
            outbox = connection.execute(outbox_query()).one()
            by_status = dict(connection.execute(aliquots_query()).all())
            since = now - timedelta(days=EXCURSION_DAYS)
            excursions, latest = connection.execute(excursions_query(since)).one()
            connection.rollback()
        return {
            "outbox": outbox._mapping,
            "aliquots": by_status,
            "excursions": excursions,
            "latest_excursion": latest,
        }

    def collect(self):
        up = GaugeMetricFamily(
            "biobank_scrape_database_up",
            "1 when the database answered this scrape; 0 when it did not (the metrics read "
            "from it are then absent).",
        )
        try:
            found = self._read()
        except sa.exc.SQLAlchemyError as err:
            log.warning("metrics: the database did not answer: %s", type(err).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        outbox = GaugeMetricFamily(
            "biobank_outbox_messages",
            "Unsent notifications by state: pending (not tried yet), retrying (failed, "
            "to be tried again), failed (delivery gave up).",
            labels=["state"],
        )
        for state in ("pending", "retrying", "failed"):
            outbox.add_metric([state], int(found["outbox"][state] or 0))
        yield outbox

        aliquots = GaugeMetricFamily("biobank_aliquots", "Aliquots by status.", labels=["status"])
        counts = found["aliquots"]
        for status in (*ALIQUOT_STATUSES, *sorted(set(counts) - set(ALIQUOT_STATUSES))):
            aliquots.add_metric([status], int(counts.get(status, 0)))
        yield aliquots

        yield GaugeMetricFamily(
            "biobank_temperature_excursions_recent",
            f"Temperature excursions of freezers that ended in the last {EXCURSION_DAYS} days "
            "(recorded once ended; each counted once however many tubes it concerned).",
            value=int(found["excursions"] or 0),
        )
        latest = found["latest_excursion"]
        if latest is not None:
            if latest.tzinfo is None:  # stored as naive UTC (SQLite)
                latest = latest.replace(tzinfo=UTC)
            yield GaugeMetricFamily(
                "biobank_temperature_excursion_last_end_timestamp_seconds",
                f"When the latest temperature excursion of the last {EXCURSION_DAYS} days "
                "ended (Unix time).",
                value=latest.timestamp(),
            )


class PoolCollector:
    """The database connections the answering process holds (its pool's checked-out
    connections): a worker's pool, not the sum of the workers'."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def describe(self):
        return []

    def collect(self):
        checkedout = getattr(self.engine.pool, "checkedout", None)
        if not callable(checkedout):
            return
        yield GaugeMetricFamily(
            "biobank_db_pool_connections_in_use",
            "Database connections the answering worker's pool has checked out.",
            value=checkedout(),
        )


class CustodyCollector:
    """The last ``flask custody verify`` run on this machine (kept in the instance
    folder); absent when none was recorded."""

    def __init__(self, instance_path: str):
        self.instance_path = instance_path

    def describe(self):
        return []

    def collect(self):
        outcome = verification.load(self.instance_path)
        if outcome is None:
            return
        yield GaugeMetricFamily(
            "biobank_custody_last_verification_timestamp_seconds",
            "When the chain of custody was last verified (Unix time).",
            value=outcome.at.timestamp(),
        )
        yield GaugeMetricFamily(
            "biobank_custody_last_verification_intact",
            "1 when the last verification found every chain intact, 0 when it found a break.",
            value=1 if outcome.intact else 0,
        )
        yield GaugeMetricFamily(
            "biobank_custody_last_verification_broken_chains",
            "Broken chains found by the last verification.",
            value=outcome.broken_chains,
        )


class _ThisProcess:
    """The request counts of this process (no multiprocess folder)."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def describe(self):
        return []

    def collect(self):
        return self.registry.collect()


def scrape_registry(
    engine: sa.Engine,
    instance_path: str,
    *,
    requests: CollectorRegistry,
    multiprocess_dir: str | None,
) -> CollectorRegistry:
    """A registry for one scrape: the requests (every worker's, from the multiprocess
    folder, or this process's), then what is read now. The pool is read last, once the
    scrape's own connection is back in it."""
    registry = CollectorRegistry()
    if multiprocess_dir:
        MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(_ThisProcess(requests))
    registry.register(DatabaseCollector(engine))
    registry.register(CustodyCollector(instance_path))
    registry.register(PoolCollector(engine))
    return registry
