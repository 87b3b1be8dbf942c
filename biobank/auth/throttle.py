"""Sign-in throttling: failed sign-ins per account and per address, and a bound on the
password checks running at once.

Every failed sign-in is counted twice, against the account name typed and against the
client's address, in moving windows (LOGIN_LIMITS_PER_ACCOUNT, LOGIN_LIMITS_PER_ADDRESS:
by default 5 a minute, 20 an hour and 100 a day per account; 20 a minute and 100 an hour
per address), so that the wait grows with the failures. When any window is spent, the
sign-in is refused before the password is even checked, with the time until the window
lets one more attempt through, and the refusal is logged at WARNING (account name,
address, limit; never the password). A successful sign-in is not counted, so people who
type their password right are never slowed.

A successful sign-in does not clear the account's failures either. Clearing them would
let someone who guesses at an account reset its count whenever its owner signs in, and
guess on at five a minute for ever; kept, the count bounds the guesses at 100 a day
whatever happens. The owner, once the window has passed, signs in as usual.

The counts live in the storage of the ``limits`` library (the engine of Flask-Limiter)
named by RATELIMIT_STORAGE_URI: ``memory://`` counts inside one process (each worker
process alone), ``redis://host:6379`` shares them between every worker and machine. The
database is not a storage ``limits`` can use. When the storage does not answer (Redis
down), this process counts alone for the time being and says so at ERROR: sign-in keeps
working, and guesses stay bounded.

Checking a password is scrypt: about 0.1 s of a core and 32 MB. PASSWORD_CHECKS_AT_ONCE
bounds how many run at once in a process; a sign-in waits at most PASSWORD_CHECK_WAIT
seconds for its turn and is then refused as busy, so a flood of sign-ins, even from many
addresses, never takes every core or every worker thread from the scans and the API.

Only the login page checks a password: the API authenticates with bearer tokens (one
indexed lookup of their SHA-256, no slow hash). Whatever else checks a password (a
password change asking for the current one) goes through ``verify`` too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError, StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from biobank.errors import Busy, TooManyAttempts

EXTENSION = "login_throttle"
NAMESPACE = "biobank-sign-in"
NAME_KEY_MAX = 200  # longer names are no account's (64 at most): they share a count
BUSY_RETRY_SECONDS = 5


@dataclass
class Throttle:
    limiter: MovingWindowRateLimiter
    fallback: MovingWindowRateLimiter  # this process's own count, when the storage fails
    scheme: str
    per_account: list[RateLimitItem]
    per_address: list[RateLimitItem]
    checks: threading.BoundedSemaphore
    wait: float

    def _call(self, method: str, *args):
        try:
            return getattr(self.limiter, method)(*args)
        except StorageError as err:
            # The storage's address may carry a password: only its scheme is logged.
            current_app.logger.error(
                "sign-in throttle: the %s:// storage did not answer (%s); counting in this "
                "process only",
                self.scheme,
                type(err.storage_error).__name__,
            )
            return getattr(self.fallback, method)(*args)

    def windows(self, username: str, address: str | None):
        yield "account", self.per_account, (NAMESPACE, "account", username[:NAME_KEY_MAX])
        if address:
            yield "address", self.per_address, (NAMESPACE, "address", address)

    def spent(self, username: str, address: str | None):
        """(scope, limit, seconds until one more attempt) of the spent window that lasts
        longest, or None when an attempt may go ahead."""
        now = time.time()
        longest = None
        for scope, limits, keys in self.windows(username, address):
            for limit in limits:
                if self._call("test", limit, *keys):
                    continue
                reset_at = self._call("get_window_stats", limit, *keys).reset_time
                wait = max(1, math.ceil(reset_at - now))
                if longest is None or wait > longest[2]:
                    longest = (scope, limit, wait)
        return longest

    def failed(self, username: str, address: str | None) -> None:
        for _scope, limits, keys in self.windows(username, address):
            for limit in limits:
                self._call("hit", limit, *keys)


def init_app(app: Flask) -> None:
    """Build this application's throttle from its settings; a storage or limit that cannot
    work stops the start with the reason."""
    uri = app.config["RATELIMIT_STORAGE_URI"]
    options = {"wrap_exceptions": True, **app.config["RATELIMIT_STORAGE_OPTIONS"]}
    scheme = uri.partition("://")[0]
    try:
        storage = storage_from_string(uri, **options)
        limiter = MovingWindowRateLimiter(storage)
    except (ConfigurationError, NotImplementedError) as err:
        raise RuntimeError(
            f"RATELIMIT_STORAGE_URI {scheme}:// cannot count failed sign-ins ({err}). Use "
            "memory:// for one process or redis://host:6379 for several workers; the "
            "database is not a storage the limits library can use."
        ) from err
    try:
        # An empty setting counts nothing (per address, behind a terminal server that
        # gives every user the same address, say).
        per_account, per_address = (
            parse_many(text) if (text := app.config[name] or "").strip() else []
            for name in ("LOGIN_LIMITS_PER_ACCOUNT", "LOGIN_LIMITS_PER_ADDRESS")
        )
    except ValueError as err:
        raise RuntimeError(
            f"LOGIN_LIMITS_PER_ACCOUNT and LOGIN_LIMITS_PER_ADDRESS are limits such as "
            f'"5 per minute; 20 per hour": {err}'
        ) from err
    at_once = int(app.config["PASSWORD_CHECKS_AT_ONCE"])
    if at_once < 1:
        raise RuntimeError("PASSWORD_CHECKS_AT_ONCE must be 1 or more.")
    app.extensions[EXTENSION] = Throttle(
        limiter=limiter,
        fallback=MovingWindowRateLimiter(MemoryStorage()),
        scheme=scheme,
        per_account=per_account,
        per_address=per_address,
        checks=threading.BoundedSemaphore(at_once),
        wait=float(app.config["PASSWORD_CHECK_WAIT"]),
    )


def _throttle() -> Throttle:
    return current_app.extensions[EXTENSION]


def verify(username: str, address: str | None, check: Callable[[], bool]) -> bool:
    """Run ``check`` (the password hash comparison of a sign-in as ``username`` from
    ``address``) unless this account or address failed too often, and count a failure
    when it answers False.

    Raises ``TooManyAttempts`` (429) without running ``check`` when a window is spent, and
    ``Busy`` (503) when no password check slot frees up within PASSWORD_CHECK_WAIT.
    ``address`` is None outside a request (a command): only the account is counted."""
    throttle = _throttle()
    _refuse_if_spent(throttle, username, address)
    if not throttle.checks.acquire(timeout=throttle.wait):
        current_app.logger.warning(
            "sign-in refused, busy: account %r, address %s: %d password checks already running",
            username,
            address or "-",
            current_app.config["PASSWORD_CHECKS_AT_ONCE"],
        )
        raise Busy(
            _("The server is busy signing other people in; try again in a few seconds."),
            retry_after=BUSY_RETRY_SECONDS,
        )
    try:
        # Failures counted while this attempt waited its turn may have spent a window.
        _refuse_if_spent(throttle, username, address)
        matches = bool(check())
        if not matches:
            throttle.failed(username, address)
    finally:
        throttle.checks.release()
    return matches


def _refuse_if_spent(throttle: Throttle, username: str, address: str | None) -> None:
    spent = throttle.spent(username, address)
    if spent is None:
        return
    scope, limit, wait = spent
    current_app.logger.warning(
        "sign-in refused, too many failures: account %r, address %s, limit %s per %s "
        "reached, retry in %d s",
        username,
        address or "-",
        limit,
        scope,
        wait,
    )
    if scope == "account":
        reason = _("Too many failed sign-ins for this account.")
    else:
        reason = _("Too many failed sign-ins from this network address.")
    raise TooManyAttempts(f"{reason} {_wait_words(wait)}", retry_after=wait)


def _wait_words(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return ngettext("Try again in %(num)d minute.", "Try again in %(num)d minutes.", minutes)
    hours = math.ceil(seconds / 3600)
    return ngettext("Try again in %(num)d hour.", "Try again in %(num)d hours.", hours)
