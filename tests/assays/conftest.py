"""Stored aliquots to measure, and plates made for them."""

from __future__ import annotations

import pytest

from tests import factories
from tests.distribution.conftest import stock


@pytest.fixture
def bank(db, sites):
    factories.freezer({})
    return stock(db)


@pytest.fixture
def serum(bank):
    """Serum aliquots: baseline and month 2 of LIM-001..003 (one each)."""
    return {
        (p, v): bank[(p, v, "SER")][0]
        for p in ("LIM-001", "LIM-002", "LIM-003")
        for v in ("BL", "M2")
    }
