"""Odd input never makes a server error: a NUL byte (which PostgreSQL text cannot hold)
in a path, a query, a form, a JSON body or an upload's file name, a line break in a file
name, and numbers beyond the database's integers in a query or a path are
answered 400 or 404, with the error JSON under /api/, an OperationOutcome under /fhir/
and an error page elsewhere."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from werkzeug.routing import IntegerConverter

from biobank.sites import services as site_services
from biobank.sites.models import Site

HUGE = 99999999999999999999  # beyond 64 bits
BEYOND_INTEGER = 99999999999  # beyond the database's 32-bit keys
SENTINEL = 424242424  # replaced by the number tried, in a built address
SKIPPED = {"static", "auth.logout"}


@pytest.fixture
def admin(login_as):
    return login_as("admin")


@pytest.fixture
def admin_api(api_as):
    return api_as("admin")


def rules(app, method: str):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint not in SKIPPED and method in rule.methods:
            yield rule


def int_parameters(rule) -> list[str]:
    return [n for n, c in rule._converters.items() if isinstance(c, IntegerConverter)]


def text_parameters(rule) -> list[str]:
    return [n for n, c in rule._converters.items() if not isinstance(c, IntegerConverter)]


def build(rule, world, **values) -> str:
    return rule.build({**world, **values}, append_unknown=False)[1]


def refused_as(response, url: str, statuses=(400, 404)) -> str | None:
    """What is wrong with the answer to odd input, or None."""
    if response.status_code not in statuses:
        return f"{url}: {response.status_code}"
    if url.startswith("/api/"):
        body = response.get_json(silent=True) or {}
        error = body.get("error") or {}
        if not (error.get("code") and error.get("message")):
            return f"{url}: {response.status_code} without the error JSON"
    elif url.startswith("/fhir/"):
        body = response.get_json(silent=True) or {}  # application/fhir+json
        if body.get("resourceType") != "OperationOutcome":
            return f"{url}: {response.status_code} without an OperationOutcome"
    elif "text/html" not in response.content_type:
        return f"{url}: {response.status_code} {response.content_type}, not an error page"
    return None


def client_for(url, admin, admin_api):
    return admin_api if url.startswith("/api/") else admin


# --- every GET route ---------------------------------------------------------------------


def test_a_nul_byte_in_the_query_of_any_get_route_is_a_400(app, world, admin, admin_api):
    wrong = []
    for rule in rules(app, "GET"):
        url = build(rule, world) + "?q=a%00b&code=LIM%00&status=x%00"
        problem = refused_as(client_for(url, admin, admin_api).get(url), url, (400,))
        if problem:
            wrong.append(problem)
    assert not wrong, "\n".join(wrong)


def test_a_nul_byte_in_any_path_parameter_is_refused(app, world, admin, admin_api):
    wrong = []
    for rule in rules(app, "GET"):
        for name in text_parameters(rule):
            url = build(rule, world, **{name: world[name] + "\x00"})
            assert "%00" in url
            problem = refused_as(client_for(url, admin, admin_api).get(url), url)
            if problem:
                wrong.append(problem)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("number", [str(BEYOND_INTEGER), str(HUGE), "9" * 5000])
def test_an_integer_path_parameter_beyond_the_database_is_not_found(
    app, world, admin, admin_api, number
):
    wrong, tried = [], 0
    for method in ("GET", "POST"):
        for rule in rules(app, method):
            names = int_parameters(rule)
            if not names:
                continue
            url = build(rule, world, **dict.fromkeys(names, SENTINEL)).replace(
                str(SENTINEL), number
            )
            response = client_for(url, admin, admin_api).open(url, method=method, json={})
            tried += 1
            problem = refused_as(response, url, (404,))
            if problem:
                wrong.append(f"{method} {problem}")
    assert tried > 10
    assert not wrong, "\n".join(wrong)


def test_huge_numbers_in_the_query_of_any_get_route_never_fail(app, world, admin, admin_api):
    """Pagination and page numbers beyond the database's integers: refused (400), or
    ignored by a route that has no such argument, never a server error."""
    wrong = []
    query = f"?offset={HUGE}&limit={HUGE}&page={HUGE}&per_page={HUGE}&request_id={HUGE}"
    for rule in rules(app, "GET"):
        url = build(rule, world) + query
        response = client_for(url, admin, admin_api).get(url)
        if response.status_code >= 500:
            wrong.append(f"{url}: {response.status_code}")
        elif response.status_code >= 400:
            problem = refused_as(response, url, (400, 404, 409))
            if problem:
                wrong.append(problem)
    assert not wrong, "\n".join(wrong)


def test_an_offset_beyond_the_database_is_a_400_naming_it(world, admin_api):
    response = admin_api.get(f"/api/v1/participants?offset={HUGE}")
    assert response.status_code == 400
    assert "offset" in response.get_json()["error"]["fields"]
    assert admin_api.get("/api/v1/participants?offset=2147483647").status_code == 200


def test_a_request_id_beyond_the_database_is_not_found(world, admin, admin_api):
    for number in (BEYOND_INTEGER, HUGE):
        page = admin.get(f"/requests/{number}")
        assert page.status_code == 404 and "text/html" in page.content_type
        answer = admin_api.get(f"/api/v1/requests/{number}")
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"


def test_a_page_number_beyond_the_database_is_a_clear_400(world, admin):
    response = admin.get(f"/outbox?page={HUGE}")
    assert response.status_code == 400
    assert "too large" in response.get_data(as_text=True)


def test_a_value_the_database_cannot_hold_is_refused_and_rolled_back(app, db, sites):
    """Whatever slips past the checks above and makes the database fail (an overflow on
    SQLite, a DataError on PostgreSQL) is a 400, and what the request wrote is not kept."""

    def write_then_overflow():
        site_services.create_site("ODD", "Odd site", actor=None)
        db.session.execute(sa.select(Site).offset(HUGE)).all()
        return "written"

    app.add_url_rule("/api/v1/odd-write", "odd_write", write_then_overflow, methods=["POST"])
    app.add_url_rule("/odd-write", "odd_write_page", write_then_overflow, methods=["POST"])
    client = app.test_client()
    answer = client.post("/api/v1/odd-write")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "unstorable_value"
    page = client.post("/odd-write")
    assert page.status_code == 400 and "too large" in page.get_data(as_text=True)
    assert db.session.execute(sa.select(Site).where(Site.code == "ODD")).scalar() is None


# --- every POST route --------------------------------------------------------------------

FIELDS = ("barcode", "code", "aliquots", "reason", "note", "name", "title", "template", "q")


def test_a_nul_byte_in_any_form_or_json_field_is_a_400(app, world, admin, admin_api):
    wrong = []
    for rule in rules(app, "POST"):
        url = build(rule, world)
        values = dict.fromkeys(FIELDS, "LIM-001\x00")
        if url.startswith("/api/"):
            response = admin_api.post(url, json={**values, "nested": [{"note": "a\x00"}]})
        else:
            response = admin.post(url, data=values)
        problem = refused_as(response, url, (400,))
        if problem:
            wrong.append(f"POST {problem}")
    assert not wrong, "\n".join(wrong)


def test_the_refusal_names_the_field(world, admin_api, admin):
    body = {"code": "LIM-009", "site": "LIM", "arm": "G2", "note": "x\x00y"}
    error = admin_api.post("/api/v1/participants", json=body).get_json()["error"]
    assert error["code"] == "request.control_character" and "note" in error["fields"]
    deep = {"criteria": {"visits": ["BL", "M2\x00"]}}
    error = admin_api.post("/api/v1/requests", json=deep).get_json()["error"]
    assert "criteria.visits.1" in error["fields"]
    surrogate = b'{"title": "a\\ud800b"}'
    answer = admin_api.post("/api/v1/requests", data=surrogate, content_type="application/json")
    assert answer.status_code == 400 and "title" in answer.get_json()["error"]["fields"]
    page = admin.get("/participants?q=LIM%00")
    assert page.status_code == 400 and "control character" in page.get_data(as_text=True)
    assert admin.get("/participants%00").status_code == 400


# --- uploads -----------------------------------------------------------------------------

# A browser writes a line break in a file name as %0D%0A, and sent raw a line break cuts
# the part's header (werkzeug then finds no file); a client can send the real characters
# in RFC 5987 form (filename*), which werkzeug decodes.
BAD_NAMES = [
    'filename="results\x00.xlsx"',
    "filename*=UTF-8''results%0D%0A.xlsx",
    "filename*=UTF-8''a%0Db.csv",
    "filename*=UTF-8''x%0AContent-Type%3A%20text%2Fhtml.csv",
    "filename*=UTF-8''r%00.csv",
]


def multipart(file_name: str) -> dict:
    """A request body with one file named by the Content-Disposition parameter given."""
    boundary = "odd-input"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; {file_name}\r\n'
        f"Content-Type: text/csv\r\n\r\nBarcode,Analyte,Value\r\n--{boundary}--\r\n"
    ).encode("latin-1")
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.parametrize("file_name", BAD_NAMES)
def test_an_upload_whose_name_holds_a_control_character_is_a_400(
    world, admin, admin_api, file_name
):
    for client, url in (
        (admin_api, "/api/v1/assay-runs/sheets"),
        (admin, "/assays/sheets"),
        (admin_api, "/api/v1/rack-scans"),
        (admin, "/storage/rack-scan"),
        (admin_api, "/api/v1/assay-runs/plates"),
        (admin, "/assays/plates"),
    ):
        response = client.post(url, **multipart(file_name))
        assert refused_as(response, url, (400,)) is None, (url, response.status_code)
        if url.startswith("/api/"):
            assert response.get_json()["error"]["code"] == "request.control_character"
            assert "file" in response.get_json()["error"]["fields"]
