"""An administrator bound to a centre stays inside it: it can neither make an account that
sees every centre nor act as the central administrator through a token it minted. Every
token issued, revoked or used for the first time leaves exactly one audit row."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from biobank.auth import services as auth
from biobank.auth.models import AccountEvent, ApiToken, User
from biobank.errors import Forbidden, NotFound
from tests.conftest import PASSWORD
from tests.pages import refused


@pytest.fixture
def accounts(db, sites):
    """The central administrator, an administrator of the Paris centre, and a technician
    of each of the Paris and Limoges centres."""
    made = {
        "admin": auth.create_user("admin", "admin", PASSWORD),
        "admin.paris": auth.create_user("admin.paris", "admin", PASSWORD, site_code="PAR"),
        "tech.paris": auth.create_user("tech.paris", "technician", PASSWORD, site_code="PAR"),
        "nurse.lim": auth.create_user("nurse.lim", "technician", PASSWORD, site_code="LIM"),
    }
    db.session.commit()
    return made


def log_in(app, username):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def account(db, username) -> User | None:
    db.session.rollback()  # see what the requests committed
    return db.session.execute(sa.select(User).where(User.username == username)).scalar()


def tokens_of(db, username) -> int:
    db.session.rollback()
    query = (
        sa.select(sa.func.count()).select_from(ApiToken).join(User).where(User.username == username)
    )
    return db.session.execute(query).scalar()


def events(db, kind=None) -> list[AccountEvent]:
    db.session.rollback()
    query = sa.select(AccountEvent).order_by(AccountEvent.id)
    if kind:
        query = query.where(AccountEvent.kind == kind)
    return db.session.execute(query).scalars().all()


def new_account(username, site, role="admin"):
    return {"username": username, "role": role, "site": site, "password": PASSWORD}


def test_a_centre_admin_cannot_create_an_account_outside_its_centre(app, db, accounts):
    paris = log_in(app, "admin.paris")
    for site in ("", "LIM"):
        page = refused(paris, paris.post("/users", data=new_account("root2", site)))
        assert "root2" not in page.split("<h2>")[0]  # not listed among the accounts
        assert account(db, "root2") is None, site
    with pytest.raises(Forbidden):
        auth.create_user("root3", "admin", PASSWORD, actor=accounts["admin.paris"])
    db.session.rollback()
    # An account of its own centre, administrator or not, it may create.
    assert paris.post("/users", data=new_account("admin2.paris", "PAR")).status_code == 303
    assert account(db, "admin2.paris").site.code == "PAR"


def test_a_centre_admin_cannot_promote_an_account_out_of_its_centre(app, db, accounts):
    paris = log_in(app, "admin.paris")
    for site in ("", "LIM"):
        response = paris.post("/users/tech.paris/access", data={"role": "admin", "site": site})
        refused(paris, response)
        tech = account(db, "tech.paris")
        assert (tech.role, tech.site.code) == ("technician", "PAR"), site
    with pytest.raises(Forbidden):
        auth.set_access("tech.paris", role="admin", site_code=None, actor=accounts["admin.paris"])
    db.session.rollback()
    # Inside its centre it may.
    response = paris.post("/users/tech.paris/access", data={"role": "manager", "site": "PAR"})
    assert response.status_code == 303
    assert account(db, "tech.paris").role == "manager"


def test_a_centre_admin_neither_sees_nor_manages_the_accounts_of_other_centres(app, db, accounts):
    central_token = auth.issue_token("admin")
    db.session.commit()
    paris = log_in(app, "admin.paris")
    listing = paris.get("/users").get_data(as_text=True)
    assert "tech.paris" in listing
    assert "nurse.lim" not in listing and ">admin<" not in listing
    for name in ("nurse.lim", "admin"):
        assert paris.get(f"/users/{name}").status_code == 404
        refused(paris, paris.post(f"/users/{name}/active", data={"active": "0"}))
        assert account(db, name).active
        strong = "plum orchard violin seventy"
        data = {"password": strong, "password_again": strong}
        refused(paris, paris.post(f"/users/{name}/password", data=data))
        assert auth.authenticate(name, PASSWORD) is not None
        refused(paris, paris.post(f"/users/{name}/tokens/revoke"))
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {central_token}"})
    assert me.status_code == 200  # the central administrator's token was not revoked
    with pytest.raises(NotFound):
        auth.get_user("nurse.lim", actor=accounts["admin.paris"])
    assert {u.username for u in auth.list_users(actor=accounts["admin.paris"])} == {
        "admin.paris",
        "tech.paris",
    }


def test_a_centre_admin_cannot_mint_a_token_for_another_account(app, db, accounts):
    paris = log_in(app, "admin.paris")
    for name in ("admin", "nurse.lim", "tech.paris"):
        page = refused(paris, paris.post(f"/users/{name}/token"))
        assert 'class="mono token"' not in page
        assert tokens_of(db, name) == 0, name
    with pytest.raises(Forbidden):
        auth.issue_token("tech.paris", actor=accounts["admin.paris"])
    db.session.rollback()
    # For itself it may: the token acts as admin.paris, inside the Paris centre.
    page = paris.post("/users/admin.paris/token").get_data(as_text=True)
    token = page.split('class="mono token" readonly value="')[1].split('"')[0]
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.get_json() == {"username": "admin.paris", "role": "admin", "site": "PAR"}


def test_the_central_admin_manages_every_account(app, db, accounts):
    central = log_in(app, "admin")
    listing = central.get("/users").get_data(as_text=True)
    assert all(name in listing for name in accounts)
    assert central.post("/users", data=new_account("root2", "")).status_code == 303
    assert account(db, "root2").site_id is None
    response = central.post("/users/nurse.lim/access", data={"role": "manager", "site": ""})
    assert response.status_code == 303
    assert (account(db, "nurse.lim").role, account(db, "nurse.lim").site_id) == ("manager", None)
    page = central.post("/users/tech.paris/token").get_data(as_text=True)
    assert 'class="mono token"' in page and tokens_of(db, "tech.paris") == 1


def test_an_administrator_cannot_change_their_own_role_or_centre(app, db, accounts):
    paris = log_in(app, "admin.paris")
    refused(paris, paris.post("/users/admin.paris/access", data={"role": "admin", "site": "PAR"}))
    central = log_in(app, "admin")
    refused(central, central.post("/users/admin/access", data={"role": "manager", "site": ""}))
    assert account(db, "admin").role == "admin"


def test_the_command_line_creates_the_first_administrator(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["user", "create", "root", "--role", "admin", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    root = account(db, "root")
    assert (root.role, root.site_id) == ("admin", None)
    created = events(db, "account_created")
    assert [(e.actor_id, e.subject_id) for e in created] == [(None, root.id)]


def test_every_token_issued_revoked_or_first_used_is_audited_once(app, db, accounts):
    central = log_in(app, "admin")
    page = central.post("/users/nurse.lim/token").get_data(as_text=True)
    token = page.split('class="mono token" readonly value="')[1].split('"')[0]
    second = auth.issue_token("nurse.lim")  # the command line: no actor
    db.session.commit()
    lim, admin = accounts["nurse.lim"].id, accounts["admin"].id
    issued = events(db, "token_issued")
    assert [(e.actor_id, e.subject_id) for e in issued] == [(admin, lim), (None, lim)]
    assert all(e.token_id for e in issued)

    bearer = app.test_client()
    bearer.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    assert bearer.get("/api/v1/me").status_code == 200
    used = events(db, "token_first_used")
    assert len(used) == 1
    assert (used[0].actor_id, used[0].subject_id) == (lim, lim)
    assert used[0].token_id == issued[0].token_id
    assert used[0].address == "127.0.0.1"
    first_used_at = db.session.get(ApiToken, issued[0].token_id).first_used_at
    assert first_used_at is not None
    # A second use adds nothing, and the first use keeps its time.
    assert bearer.get("/api/v1/me").status_code == 200
    assert len(events(db, "token_first_used")) == 1
    assert db.session.get(ApiToken, issued[0].token_id).first_used_at == first_used_at

    response = central.post("/users/nurse.lim/tokens/revoke")
    assert response.status_code == 303
    revoked = events(db, "token_revoked")
    assert sorted(e.token_id for e in revoked) == sorted(e.token_id for e in issued)
    assert {(e.actor_id, e.subject_id) for e in revoked} == {(admin, lim)}
    assert bearer.get("/api/v1/me").status_code == 401
    other = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})
    assert other.status_code == 401
    # Revoking again revokes nothing and records nothing.
    central.post("/users/nurse.lim/tokens/revoke")
    assert len(events(db, "token_revoked")) == 2


def test_a_first_use_on_a_refused_write_is_recorded_all_the_same(app, db, accounts):
    """The request is rolled back; the credential's audit is not part of it (and on SQLite
    recording it does not wait for the request's own write lock)."""
    token = auth.issue_token("nurse.lim")
    db.session.commit()
    bearer = app.test_client()
    bearer.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    assert bearer.post("/api/v1/specimens", json={}).status_code == 400
    assert len(events(db, "token_first_used")) == 1
    assert bearer.post("/api/v1/specimens", json={}).status_code == 400
    assert len(events(db, "token_first_used")) == 1


def test_the_accounts_page_shows_the_events_of_the_admins_centre_only(app, db, accounts):
    auth.issue_token("nurse.lim")
    auth.issue_token("tech.paris")
    db.session.commit()
    paris = log_in(app, "admin.paris")
    recent = paris.get("/users").get_data(as_text=True).split("Recent events")[1]
    assert "tech.paris" in recent and "API token issued" in recent
    assert "nurse.lim" not in recent
    central = log_in(app, "admin")
    recent = central.get("/users").get_data(as_text=True).split("Recent events")[1]
    assert "tech.paris" in recent and "nurse.lim" in recent
