"""A GET never writes: a link on another site, followed with the user's session cookie,
cannot add to a tube's custody log nor change any other record."""

from __future__ import annotations

import sqlalchemy as sa

from biobank.extensions import db
from tests import factories


def row_counts() -> dict[str, int]:
    counts = {}
    for table in db.metadata.sorted_tables:
        counts[table.name] = db.session.execute(
            sa.select(sa.func.count()).select_from(table)
        ).scalar()
    db.session.rollback()
    return counts


def custody_kinds(client, barcode):
    events = client.get(f"/api/v1/aliquots/{barcode}/custody").get_json()
    return [event["kind"] for event in events["items"]]


def test_a_label_link_followed_with_a_session_cookie_records_no_print(db, login_as):
    factories.participant("LIM", code="LIM-001")
    barcode = factories.visit("LIM-001", "BL").aliquots[0].barcode
    db.session.commit()
    technician = login_as("technician")
    before = row_counts()
    for query in ("format=zpl&reason=forged", "format=png&reason=forged", "reason=x&dpi=300"):
        response = technician.get(f"/api/v1/aliquots/{barcode}/label?{query}")
        assert response.status_code in (200, 400)
    assert row_counts() == before
    assert "LABEL_PRINTED" not in custody_kinds(technician, barcode)


def test_no_get_route_changes_any_table(app, world, login_as):
    """Every GET of the app, as an administrator (who may call them all), leaves every
    table as it was."""
    params = world
    admin = login_as("admin")
    before = row_counts()
    called = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        try:
            url = rule.build(params, append_unknown=False)[1]
        except Exception:  # a parameter this walk does not name: filled with 1
            url = rule.build(dict.fromkeys(rule.arguments, "1"), append_unknown=False)[1]
        response = admin.get(url)
        assert response.status_code != 500, url
        called.append(url)
    assert len(called) > 40
    assert row_counts() == before
