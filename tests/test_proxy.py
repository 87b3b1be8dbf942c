"""Behind a reverse proxy: with PROXY_HOPS = n, the client's address, the scheme, the host
and the port are read from the X-Forwarded-* headers of the last n proxies; with 0 they
are the client's to write and are ignored."""

from __future__ import annotations

import pytest
from flask import jsonify, request

from biobank import create_app

FORWARDED = {
    "X-Forwarded-For": "198.51.100.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "biobank.example.org",
    "X-Forwarded-Port": "443",
}


def _seen_by(tmp_path, **settings):
    """A client of an app that answers what it sees of each request."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "proxy.sqlite3"),
            "SECRET_KEY": "test-secret-test-secret-test-secret",
            **settings,
        }
    )

    def seen():
        return jsonify(
            address=request.remote_addr,
            scheme=request.scheme,
            secure=request.is_secure,
            host=request.host,
            root=request.url_root,
        )

    app.add_url_rule("/seen", "seen", seen)
    return app.test_client()


def test_behind_one_proxy_the_client_and_scheme_are_the_proxys_word(tmp_path):
    seen = _seen_by(tmp_path, PROXY_HOPS=1).get("/seen", headers=FORWARDED).get_json()
    assert seen == {
        "address": "198.51.100.7",
        "scheme": "https",
        "secure": True,
        "host": "biobank.example.org",
        "root": "https://biobank.example.org/",
    }


def test_only_the_last_proxys_word_is_believed(tmp_path):
    # The client wrote its own X-Forwarded-For; nginx appended the address it saw.
    chain = {**FORWARDED, "X-Forwarded-For": "10.6.6.6, 198.51.100.7"}
    seen = _seen_by(tmp_path, PROXY_HOPS=1).get("/seen", headers=chain).get_json()
    assert seen["address"] == "198.51.100.7"


def test_without_a_proxy_declared_the_headers_are_ignored(tmp_path):
    seen = _seen_by(tmp_path, PROXY_HOPS=0).get("/seen", headers=FORWARDED).get_json()
    assert seen == {
        "address": "127.0.0.1",
        "scheme": "http",
        "secure": False,
        "host": "localhost",
        "root": "http://localhost/",
    }


def test_proxy_hops_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXY_HOPS", "1")
    seen = _seen_by(tmp_path).get("/seen", headers=FORWARDED).get_json()
    assert seen["address"] == "198.51.100.7" and seen["scheme"] == "https"


@pytest.mark.parametrize("value", ["one", "-1"])
def test_a_wrong_proxy_hops_in_the_environment_stops_the_start(tmp_path, monkeypatch, value):
    monkeypatch.setenv("PROXY_HOPS", value)
    with pytest.raises(RuntimeError, match="PROXY_HOPS"):
        _seen_by(tmp_path)
