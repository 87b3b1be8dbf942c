"""Sites: create, list, find."""

from __future__ import annotations

import re
import zoneinfo

from flask_babel import lazy_gettext as _l

from biobank.errors import Conflict, Invalid, NotFound
from biobank.extensions import db
from biobank.sites.models import Site

SITE_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")


def create_site(code: str, name: str, *, timezone: str = "Europe/Paris", is_central=False, actor):
    code = (code or "").strip().upper()
    if not SITE_CODE.match(code):
        raise Invalid(
            _l("Site code must be 2 to 16 capital letters or digits, e.g. LIM."),
            fields={"code": code},
        )
    if not (name or "").strip():
        raise Invalid(_l("A site name is required."), fields={"name": ""})
    if timezone not in zoneinfo.available_timezones():
        raise Invalid(_l("Unknown time zone %(tz)s.", tz=timezone), fields={"timezone": timezone})
    if db.session.execute(db.select(Site.id).where(Site.code == code)).first():
        raise Conflict(_l("Site %(code)s already exists.", code=code), fields={"code": code})
    site = Site(code=code, name=name.strip(), timezone=timezone, is_central=is_central)
    db.session.add(site)
    db.session.flush()
    return site


def list_sites() -> list[Site]:
    return db.session.execute(db.select(Site).order_by(Site.code)).scalars().all()


def get_site(code: str) -> Site:
    site = db.session.execute(db.select(Site).where(Site.code == code)).scalar()
    if site is None:
        raise NotFound(_l("No site with code %(code)s.", code=code), fields={"site": code})
    return site


def in_reach(query, site_column, actor):
    """The one centre rule, for every query of centre-bound rows: a user bound to a centre
    sees only the rows whose ``site_column`` is that centre; central users see all.

    What lies outside is "not found" rather than "forbidden", so that its existence is not
    disclosed either."""
    if actor is not None and getattr(actor, "site_id", None) is not None:
        query = query.where(site_column == actor.site_id)
    return query
