"""Every route × every role: each route declares a permission and the roles get exactly
what DESIGN.md's matrix gives them."""

from __future__ import annotations

from biobank.auth.roles import PERMISSIONS, Permission, Role, role_may

# Guarded by no role: files and the API's description; /metrics answers configured
# addresses or its token, whoever is signed in (tests/metrics).
UNGUARDED_ENDPOINTS = {"static", "api-docs.openapi_json", "metrics.metrics"}
ACTIONS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# DESIGN.md's role table, written out again on purpose: a change to roles.py that is not
# a deliberate change to the design fails here.
DESIGN = {
    Permission.REGISTER: {"technician", "manager", "admin"},
    Permission.HANDLE: {"technician", "manager", "admin"},
    Permission.IMPORT_ASSAYS: {"technician", "manager", "admin"},
    Permission.ACCEPT_RUNS: {"manager", "admin"},
    Permission.CATALOGUE: {"researcher", "manager", "admin"},
    Permission.APPROVE: {"manager", "admin"},
    Permission.CONFIGURE: {"manager", "admin"},
    Permission.ADMINISTER: {"admin"},
    Permission.VIEW_SAMPLES: {"technician", "manager", "admin"},
    Permission.SIGNED_IN: {"technician", "researcher", "manager", "admin"},
}


def test_the_permission_table_is_the_design_matrix():
    for permission, roles in DESIGN.items():
        assert {r.value for r in Role if permission in PERMISSIONS[r]} == roles, permission
    assert set(DESIGN) == set(Permission)


def routes(app):
    # Logging out ends the session the other routes are tried with: it goes last.
    rules = sorted(app.url_map.iter_rules(), key=lambda rule: rule.endpoint == "auth.logout")
    for rule in rules:
        if rule.endpoint in UNGUARDED_ENDPOINTS:
            continue
        for method in sorted(rule.methods & set(ACTIONS)):
            yield rule, method


def test_every_route_declares_its_permission(app):
    missing = [
        f"{method} {rule.rule}"
        for rule, method in routes(app)
        if not hasattr(app.view_functions[rule.endpoint], "required_permission")
    ]
    assert not missing, f"routes with no declared permission: {missing}"


def test_every_route_answers_each_role_as_the_matrix_says(app, world, login_as, api_as):
    pages = {role: login_as(role.value) for role in Role}
    api = {role: api_as(role.value) for role in Role}
    anonymous = app.test_client()
    wrong = []
    for rule, method in routes(app):
        permission = app.view_functions[rule.endpoint].required_permission
        url = rule.build(world, append_unknown=False)[1]
        # The JSON API and FHIR are read with bearer tokens, and refuse with a 401.
        is_api = url.startswith(("/api/", "/fhir/"))
        clients = api if is_api else pages
        for role, client in clients.items():
            response = client.open(url, method=method, json={} if is_api else None)
            allowed = permission is None or role_may(role.value, permission)
            refused = response.status_code == 403
            if allowed == refused or response.status_code in (401, 500):
                wrong.append(f"{method} {url} as {role.value}: {response.status_code}")
        if permission is not None:
            response = anonymous.open(url, method=method)
            expected = 401 if is_api else 302
            if response.status_code != expected:
                wrong.append(f"{method} {url} anonymous: {response.status_code}")
    assert not wrong, "\n".join(wrong)


def test_refusals_say_why_in_the_error_shape(world, api_as):
    response = api_as("researcher").get(f"/api/v1/aliquots/{world['barcode']}")
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "forbidden" and error["message"]
