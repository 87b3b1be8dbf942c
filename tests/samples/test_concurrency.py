"""Races between technicians through the services (tests/races.py): one wins, the others
are told, nothing is half-written."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.errors import DomainError
from biobank.extensions import db as _db
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.study import services as study
from biobank.study.models import Visit
from tests import factories
from tests.races import ROUNDS, THREADS, race


def count(model) -> int:
    return _db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


@pytest.mark.slow
def test_racing_registrations_of_the_same_visit_register_it_once(app, db, sites):
    codes = [f"LIM-{n:03d}" for n in range(1, ROUNDS + 1)]
    for code in codes:
        factories.participant("LIM", code=code)
    db.session.commit()

    for code in codes:
        outcomes = race(app, lambda n, code=code: factories.visit(code, "BL"))
        assert outcomes == Counter({"ok": 1, "Conflict": THREADS - 1}), (code, outcomes)

    db.session.expire_all()
    assert count(Visit) == ROUNDS
    assert count(Specimen) == 2 * ROUNDS
    assert count(Aliquot) == 10 * ROUNDS
    assert custody.verify().intact


@pytest.mark.slow
def test_racing_enrolments_of_one_code_enrol_it_once(app, db, sites):
    for round_ in range(ROUNDS):
        code = f"PAR-{round_ + 100}"
        outcomes = race(app, lambda n, code=code: factories.participant("PAR", code=code))
        assert outcomes == Counter({"ok": 1, "Conflict": THREADS - 1}), outcomes


@pytest.mark.slow
def test_racing_changes_to_one_aliquot_keep_its_chain_intact(app, db, sites):
    factories.participant("LIM", code="LIM-001")
    barcodes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
    db.session.commit()

    successes = Counter()
    for round_ in range(ROUNDS):
        barcode = barcodes[round_ % len(barcodes)]

        def correct(n, barcode=barcode, round_=round_):
            samples.correct_volume(barcode, 400 - n - round_, f"recount {n}", actor=None)

        outcomes = race(app, correct)
        assert set(outcomes) <= {"ok", "Conflict"}, outcomes
        assert outcomes["ok"] >= 1
        successes[barcode] += outcomes["ok"]

    db.session.expire_all()
    report = custody.verify()
    assert report.intact, report.first_break
    for barcode, changes in successes.items():
        aliquot = samples.find_aliquot(barcode, actor=None)
        assert aliquot.custody_count == 1 + changes
        last = custody.history(aliquot.id)[-1]
        assert last.details.endswith(f'"to_ul":{aliquot.volume_ul}}}')


def test_a_race_lost_is_reported_by_name(app, db, sites):
    factories.participant("LIM", code="LIM-001")
    db.session.commit()
    factories.visit("LIM-001", "BL")
    db.session.commit()
    with pytest.raises(DomainError, match="already registered"):
        factories.visit("LIM-001", "BL")
    db.session.rollback()
    assert study.get_participant("LIM-001", actor=None).visits[0].visit_code == "BL"
