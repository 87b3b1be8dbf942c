"""Read-only FHIR R4 under /fhir/r4: Specimen and Observation, for hospital systems.

Authenticated by the API's bearer tokens (an account allowed to view samples; a centre's
account reads its centre only). Every answer is ``application/fhir+json``, errors
included: an OperationOutcome, never an error page.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, Response, request, url_for
from flask_login import current_user
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from biobank.auth.access import public
from biobank.auth.roles import Permission
from biobank.errors import DomainError, mark_refused
from biobank.fhir import capability, resources, search, services
from biobank.fhir.codes import codes

bp = Blueprint("fhir", __name__, url_prefix="/fhir/r4")

# Read when the application is built: a gap in codes.toml stops it at start-up, rather
# than failing a hospital's request later.
codes()

FHIR_JSON = "application/fhir+json; charset=utf-8"

# HTTP status → the OperationOutcome issue type that says the same.
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    429: "throttled",
    503: "transient",
}


def fhir_response(resource, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        resource.model_dump_json(exclude_none=True),
        status=status,
        content_type=FHIR_JSON,
        headers=headers,
    )


def refusal(status: int, diagnostics: str, *, expression: str | None = None, headers=None):
    """An OperationOutcome answer; the request is marked refused (nothing is committed)."""
    mark_refused()
    code = ISSUE_TYPES.get(status, "exception" if status >= 500 else "processing")
    outcome = resources.operation_outcome(code, diagnostics, expression=expression)
    return fhir_response(outcome, status, headers)


# --- who may read ---------------------------------------------------------------------------


def requires(permission: Permission):
    """As ``auth.access.requires``, answered in FHIR: 401 OperationOutcome with a
    WWW-Authenticate challenge without a valid token, 403 for an account that may not."""

    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_user.is_authenticated:
                return refusal(
                    401,
                    "Send an API token of the biobank: Authorization: Bearer <token>.",
                    headers={"WWW-Authenticate": 'Bearer realm="biobank"'},
                )
            if not current_user.may(permission):
                return refusal(403, "The account of this token may not read specimens.")
            return view(*args, **kwargs)

        guarded.required_permission = permission
        return guarded

    return decorator


# --- errors, as OperationOutcome --------------------------------------------------------------


@bp.errorhandler(search.SearchError)
def refused_search(err: search.SearchError):
    return refusal(400, err.message, expression=err.parameter)


@bp.errorhandler(DomainError)
def refused_by_a_rule(err: DomainError):
    return refusal(err.status, str(err.message))


@bp.errorhandler(HTTPException)
def http_error(err: HTTPException):
    return _http_outcome(err)


def _http_outcome(err: HTTPException):
    status = err.code or 500
    headers = None
    if isinstance(err, MethodNotAllowed) and err.valid_methods:
        headers = {"Allow": ", ".join(sorted(err.valid_methods))}
    if isinstance(err, NotFound):
        message = f"{request.path} is not an address of this FHIR server (see /fhir/r4/metadata)."
    elif isinstance(err, MethodNotAllowed):
        message = "This FHIR server is read-only: only GET is answered here."
    else:
        message = err.description or err.name
    return refusal(status, message, headers=headers)


@bp.before_app_request
def unknown_fhir_address():
    """An address under /fhir/r4 that matches no route is answered in FHIR too (a
    blueprint's error handlers see only the requests that reached one of its routes)."""
    failed = request.routing_exception
    if not isinstance(failed, NotFound | MethodNotAllowed):
        return None
    if request.path == bp.url_prefix or request.path.startswith(bp.url_prefix + "/"):
        # Who is asking is read now, inside the request's transaction, which the answer's
        # error status rolls back. Read later (the request's log line names the user), it
        # would open a transaction of its own after that end: on SQLite a POST's holds the
        # write lock, and the audit of a token's first use, written at teardown, would wait
        # for it in vain.
        _ = current_user.is_authenticated
        return _http_outcome(failed)
    return None


# --- routes ---------------------------------------------------------------------------------


@bp.get("/metadata")
@public
def metadata():
    """The CapabilityStatement: open to all, as FHIR clients read it before signing in."""
    base_url = url_for("fhir.metadata", _external=True).rsplit("/", 1)[0]
    return fhir_response(capability.statement(base_url))


@bp.get("/Specimen/<barcode>")
@requires(Permission.VIEW_SAMPLES)
def read_specimen(barcode):
    """An aliquot by its barcode or legacy barcode."""
    return fhir_response(resources.specimen(services.find_specimen(barcode, actor=current_user)))


@bp.get("/Specimen")
@requires(Permission.VIEW_SAMPLES)
def search_specimens():
    """Aliquots by participant (subject) or identifier: a searchset, empty when none."""
    names = [p.name for p in search.SPECIMEN_PARAMETERS] + [search.SUBJECT_BY_IDENTIFIER]
    given = search.parameters(request.args.to_dict(flat=False), names)
    if not given:
        raise search.SearchError(
            "subject", "Search by subject (a participant's code) or identifier (a barcode)."
        )
    records = services.search_specimens(
        subjects=_subjects(given), identifiers=_identifiers(given), actor=current_user
    )
    found = [resources.specimen(record) for record in records]
    return fhir_response(
        resources.searchset(
            found,
            self_url=request.url,
            full_url=lambda r: url_for("fhir.read_specimen", barcode=r.id, _external=True),
        )
    )


def _subjects(given: dict[str, str]) -> list[search.Reference] | None:
    by_code = given.get("subject")
    by_identifier = given.get(search.SUBJECT_BY_IDENTIFIER)
    if by_code is not None and by_identifier is not None:
        raise search.SearchError(
            search.SUBJECT_BY_IDENTIFIER, "Give subject or subject:identifier, not both."
        )
    if by_code is not None:
        return search.references(by_code)
    if by_identifier is not None:
        system = codes().system("participant")
        return [
            search.Reference("Patient", token.value)
            for token in search.tokens(by_identifier)
            if token.system in (None, system)
        ]
    return None


def _identifiers(given: dict[str, str]) -> list[search.Token] | None:
    raw = given.get("identifier")
    return search.tokens(raw) if raw is not None else None


@bp.get("/Observation")
@requires(Permission.VIEW_SAMPLES)
def search_observations():
    """The accepted, reportable results of an aliquot (specimen): a searchset."""
    given = search.parameters(
        request.args.to_dict(flat=False), [p.name for p in search.OBSERVATION_PARAMETERS]
    )
    if "specimen" not in given:
        raise search.SearchError("specimen", "Search by specimen (an aliquot's barcode).")
    records = services.specimen_observations(
        search.references(given["specimen"]), actor=current_user
    )
    found = [resources.observation(record) for record in records]
    return fhir_response(
        resources.searchset(found, self_url=request.url, full_url=lambda r: f"urn:uuid:{r.id}")
    )
