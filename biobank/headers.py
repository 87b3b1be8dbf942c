"""Security headers on every answer, and what serving over HTTPS changes.

The pages load scripts and styles from biobank/static only: no inline ``<script>``, no
``on…=`` attribute and no ``style=`` attribute in any template (tests/security/
test_headers.py reads them all). A value a page must pass to its style or script goes in
a ``data-`` attribute read by a static script (static/controls.js: the box map's column
count, ``data-cols``; the language menu's ``data-submit-on-change``). Nothing is loaded
from another site: the application runs on closed hospital networks, and the API is
described by /api/v1/openapi.json, without a documentation page fetched from a CDN.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from biobank.config import is_production

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # No 'unsafe-inline': an injected <style> or style attribute could otherwise read
        # the page (attribute selectors leak values) or dress it up as another.
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # frame-ancestors 'none' for browsers that predate it: no page of another site can
    # frame ours and trick a click (clickjacking).
    "X-Frame-Options": "DENY",
}


def init_app(app: Flask) -> None:
    """Trust the reverse proxies counted by PROXY_HOPS, mark cookies Secure under HTTPS,
    and add the headers to every answer."""
    hops = int(app.config.get("PROXY_HOPS") or 0)
    if hops > 0:
        # The client's address (the sign-in throttle counts per address) and the scheme
        # (HTTPS) as the proxy saw them. Only that many hops are believed: the headers
        # are the client's to write beyond the proxy, so gunicorn must listen on an
        # address only the proxy reaches (127.0.0.1).
        # The host and port too, so that an address the application writes out in full
        # (a link in an e-mail, a redirect) names the site as the browser reached it.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    https = app.config.get("HTTPS")
    if https is None:
        https = is_production(app.config.get("BIOBANK_ENV"))
    app.config["HTTPS"] = https = bool(https)
    if https:
        # A cookie sent once over plain HTTP (a mistyped http:// link, a hostile Wi-Fi)
        # gives its session away.
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in ALWAYS.items():
            response.headers.setdefault(name, value)
        # A PDF opens in the browser's own viewer, which object-src 'none' stops in some
        # browsers; it runs no script of ours.
        if response.mimetype != "application/pdf":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        # Browsers heed HSTS only over HTTPS: sent whenever HTTPS is on, or the request
        # came over it.
        if https or request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        return response
