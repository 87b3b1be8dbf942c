"""Injected script, framing, sniffing and plain-HTTP cookies: every answer carries the
security headers, the templates hold no inline script or style for the policy to allow,
and under HTTPS the cookies are Secure and the browser told to stay on HTTPS."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from biobank.headers import CONTENT_SECURITY_POLICY
from tests import factories
from tests.conftest import PASSWORD, _settings

BIOBANK = Path(__file__).resolve().parents[2] / "biobank"
TEMPLATES = sorted(BIOBANK.rglob("templates/**/*.html"))
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
HSTS = "max-age=31536000; includeSubDomains"


def assert_secured(response, *, csp: bool = True) -> None:
    where = f"{response.request.path} ({response.status_code}, {response.mimetype})"
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, f"{name} missing on {where}"
    if csp:
        policy = response.headers.get("Content-Security-Policy")
        assert policy == CONTENT_SECURITY_POLICY, f"no policy on {where}"
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert "'unsafe-inline'" not in directives["script-src"]
        assert "'unsafe-eval'" not in policy
        assert directives["object-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"


def test_the_policy_allows_no_inline_script_nor_another_site():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


def test_every_page_and_api_answer_carries_the_headers(app, db, login_as, api_as):
    factories.participant("LIM", code="LIM-001")
    aliquot = factories.visit("LIM-001", "BL").aliquots[0]
    factories.freezer({"BX-0001": "Box 1"})
    db.session.commit()
    anonymous = app.test_client()
    for path in ("/login", "/scan", "/no-such-page", "/api/v1/health", "/api/v1/me"):
        assert_secured(anonymous.get(path))
    assert_secured(anonymous.get("/static/app.css"))
    assert_secured(anonymous.get("/static/controls.js"))
    assert_secured(anonymous.post("/login", data={"username": "x", "password": "y"}))

    admin = login_as("admin")
    seen = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments - {"filename"} or rule.endpoint == "static":
            continue
        assert_secured(admin.get(rule.rule))
        seen += 1
    assert seen > 20
    for path in (
        f"/aliquots/{aliquot.barcode}",
        "/participants/LIM-001",
        "/participants/LIM-001/visits/BL",
        "/boxes/BX-0001",
        "/api/v1/openapi.json",
        "/api/v1/no-such-thing",
    ):
        assert_secured(admin.get(path))

    api = api_as("technician")
    for response in (
        api.get(f"/api/v1/aliquots/{aliquot.barcode}"),
        api.get(f"/api/v1/aliquots/{aliquot.barcode}/custody"),
        api.get("/api/v1/aliquots/NOSUCHONE"),
        api.post("/api/v1/specimens", json={}),
    ):
        assert response.mimetype == "application/json"
        assert_secured(response)


def test_a_pdf_carries_the_headers_but_the_policy_that_would_stop_the_browser_viewer(db, api_as):
    factories.participant("LIM", code="LIM-001")
    barcode = factories.visit("LIM-001", "BL").aliquots[0].barcode
    db.session.commit()
    response = api_as("technician").post(
        f"/api/v1/aliquots/{barcode}/label", json={"template": "cryo-38x13", "format": "pdf"}
    )
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert_secured(response, csp=False)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(BIOBANK)))
def test_no_template_holds_inline_script_handlers_or_styles(template):
    text = template.read_text(encoding="utf-8")
    # A <script> must load a file of biobank/static and hold nothing itself.
    for opening, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", text, re.S | re.I):
        assert "src=" in opening and not body.strip(), f"inline script in {template}"
    assert not re.search(r"<script\b(?![^>]*\bsrc=)", text, re.I)
    assert not re.search(r"""\son[a-z]+\s*=\s*["'{]""", text, re.I), "an on…= handler"
    assert not re.search(r"\sstyle\s*=", text, re.I), "a style= attribute"
    assert not re.search(r"<style\b", text, re.I), "a <style> block"
    assert "javascript:" not in text.lower()
    # Nothing from another site: no CDN, no web font.
    assert not re.search(r"""(src|href)\s*=\s*["']\s*(https?:)?//""", text, re.I)


def test_no_api_documentation_page_loads_from_a_cdn(app):
    for name in ("SWAGGER_UI", "REDOC", "RAPIDOC"):
        assert not app.config.get(f"OPENAPI_{name}_PATH"), name
        assert not app.config.get(f"OPENAPI_{name}_URL"), name


def _login_cookies(app):
    client = app.test_client()
    response = client.post("/login", data={"username": "https.user", "password": PASSWORD})
    assert response.headers["Location"] == "/"
    return response, client


@pytest.fixture
def https_app(database_url, db, make_user, new_apps):
    make_user("technician", name="https.user")
    db.session.commit()
    return lambda **settings: new_apps({**_settings(database_url), **settings})


@pytest.mark.parametrize(
    "settings",
    [{"HTTPS": True}, {"BIOBANK_ENV": "production"}, {"BIOBANK_ENV": "Production"}],
    ids=["HTTPS", "production", "Production"],
)
def test_under_https_cookies_are_secure_and_hsts_is_sent(https_app, settings):
    app = https_app(**settings)
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    response, client = _login_cookies(app)
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all("; Secure" in cookie for cookie in cookies)
    for path in ("/", "/login", "/api/v1/health", "/static/app.css"):
        answer = client.get(path)
        assert answer.headers["Strict-Transport-Security"] == HSTS
        assert_secured(answer)


def test_over_plain_http_in_development_no_hsts_and_cookies_stay_usable(https_app):
    app = https_app(BIOBANK_ENV="development")
    response, client = _login_cookies(app)
    assert "Strict-Transport-Security" not in client.get("/").headers
    assert all("Secure" not in cookie for cookie in response.headers.getlist("Set-Cookie"))


def test_https_seen_through_a_trusted_proxy(https_app):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.20.30.40"}
    direct = https_app(BIOBANK_ENV="development").test_client()
    # Without PROXY_HOPS, what a client writes in X-Forwarded-* is not believed.
    assert "Strict-Transport-Security" not in direct.get("/login", headers=forwarded).headers
    proxied = https_app(BIOBANK_ENV="development", PROXY_HOPS=1).test_client()
    answer = proxied.get("/login", headers=forwarded)
    assert answer.headers["Strict-Transport-Security"] == HSTS
