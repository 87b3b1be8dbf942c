"""Races for the last aliquot, with real threads, many times over, on the test database
(SQLite by default, PostgreSQL in CI): one approval wins, the others are told which
aliquots they lost, and a reserved tube is never also checked out for something else."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.distribution import services as requests
from biobank.distribution.models import Reservation
from biobank.errors import DomainError
from biobank.extensions import db as _db
from biobank.samples import services as samples
from biobank.storage import services as storage
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request, stock
from tests.races import ROUNDS, THREADS
from tests.races import race as race_

MANAGER = SimpleNamespace(id=None, username="manager", site_id=None, may=lambda _p: True)


def last_but_one(db, code: str) -> str:
    """Stock one participant's baseline, then destroy serum aliquots until two are left:
    the bank may hand out one of them, and every request will want the same one."""
    stored = stock(db, participants=(code,), visits=("BL",), first_box=int(code[-3:]) * 10)
    serum = stored[(code, "BL", "SER")]
    for barcode in serum[2:]:
        storage.destroy(barcode, "kept two", actor=None)
    _db.session.commit()
    return serum[0]


def requests_for(code: str, researcher, count: int) -> list[int]:
    ids = [serum_request(researcher, title=f"Study {n}").id for n in range(count)]
    _db.session.commit()
    return ids


def race(app, work) -> tuple[Counter, list[DomainError]]:

    errors: list[DomainError] = []

    def recording(n):
        try:
            work(n)
        except DomainError as err:
            errors.append(err)
            raise

    return race_(app, recording), errors


@pytest.mark.slow
def test_racing_approvals_for_the_last_aliquot_reserve_it_once(app, db, sites):
    factories.freezer({})
    researcher = factories.user("researcher", password=PASSWORD)
    db.session.commit()
    for round_ in range(ROUNDS):
        wanted = last_but_one(db, f"LIM-{round_ + 1:03d}")
        ids = requests_for(f"LIM-{round_ + 1:03d}", researcher, THREADS)
        reviewed = [c.barcode for c in requests.propose(ids[0], actor=MANAGER).selection.chosen]
        assert wanted in reviewed

        outcomes, errors = race(
            app, lambda n, ids=ids, wanted=wanted: requests.approve(ids[n], [wanted], actor=MANAGER)
        )
        assert outcomes == Counter({"ok": 1, "Conflict": THREADS - 1}), outcomes
        for err in errors:
            assert err.code == "reservation.unavailable"
            assert err.fields["aliquots"].split() == [wanted]
            assert wanted in str(err.message)
        held = (
            db.session.execute(sa.select(Reservation).where(Reservation.closed_at.is_(None)))
            .scalars()
            .all()
        )
        assert sum(1 for r in held if r.aliquot.barcode == wanted) == 1
    db.session.expire_all()
    assert custody.verify().intact


@pytest.mark.slow
def test_an_approval_racing_check_outs_of_the_same_tube_never_both_win(app, db, sites):
    factories.freezer({})
    researcher = factories.user("researcher", password=PASSWORD)
    db.session.commit()
    winners = Counter()
    for round_ in range(ROUNDS):
        code = f"PAR-{round_ + 1:03d}"
        wanted = last_but_one(db, code)
        (request_id,) = requests_for(code, researcher, 1)

        def work(n, wanted=wanted, request_id=request_id):
            if n == 0:
                requests.approve(request_id, [wanted], actor=MANAGER)
            else:
                storage.check_out(wanted, f"other study {n}", actor=None)

        outcomes, _ = race(app, work)
        assert outcomes["ok"] == 1 and set(outcomes) <= {"ok", "Conflict"}, outcomes
        db.session.expire_all()
        reserved = db.session.execute(
            sa.select(sa.func.count(Reservation.id)).where(Reservation.closed_at.is_(None))
        ).scalar()
        status = samples.find_aliquot(wanted, actor=None).status
        assert (reserved, status) in {
            (round_ + 1 - winners["check_out"], "in_storage"),
            (winners["approve"], "checked_out"),
        }
        winners["approve" if status == "in_storage" else "check_out"] += 1
    assert custody.verify().intact
