"""Helpers for tests that drive the pages through the Flask test client."""

from __future__ import annotations

import html


def refused(client, response) -> str:
    """A refused form follows Post/Redirect/Get: the browser is sent (303) back to a page
    that shows the message and what was typed. Returns that page's text (unescaped)."""
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    page = client.get(response.location)
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    return html.unescape(page.get_data(as_text=True))
