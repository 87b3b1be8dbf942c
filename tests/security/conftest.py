"""Fixtures of the attack tests."""

from __future__ import annotations

import pytest

from biobank import create_app
from biobank.extensions import db as _db


@pytest.fixture
def new_apps():
    """``make(config)``: an application of its own settings (a key, HTTPS, a proxy), its
    connections closed after the test."""
    made = []

    def make(config: dict):
        app = create_app(config)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            _db.session.remove()
            _db.engine.dispose()
