"""Two centres' participants with registered tubes, and a box of the central freezer."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.fixture
def bank(db, sites, protocol):
    """LIM-001 (Limoges) and PAR-001 (Paris), each with the baseline visit registered
    (serum and plasma aliquots), and box BX-0001 (9 × 9) in the central −80 °C freezer.
    Returns the Registration of each participant's baseline."""
    factories.freezer({"BX-0001": "Box 1"})
    factories.participant("LIM", code="LIM-001")
    factories.participant("PAR", code="PAR-001")
    visits = {code: factories.visit(code, "BL") for code in ("LIM-001", "PAR-001")}
    db.session.commit()
    return visits


def serum(registration) -> list:
    return [a for a in registration.aliquots if a.sample_type == "SER"]
