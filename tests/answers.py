"""What an API call answered, checked against the status a test expects."""

from __future__ import annotations


def ok(response, status=200):
    """The JSON body of an answer that must have ``status``; the body is shown otherwise."""
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def error_of(response, status):
    """The ``error`` object of a refusal that must have ``status``."""
    return ok(response, status)["error"]
