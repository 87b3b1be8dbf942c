"""The outbox page, its delivery button, the command line, users' e-mail addresses."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from biobank.auth import services as auth
from biobank.auth.models import User
from biobank.errors import Invalid
from biobank.notifications import services as notifications
from biobank.notifications.models import OutboxMessage
from tests.conftest import PASSWORD
from tests.pages import refused


def _smtp_settings(app, port):
    app.config.update(
        NOTIFIER="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_SENDER="bank@chu.fr"
    )


def _messages(db):
    db.session.expire_all()
    return db.session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()


def test_a_manager_sees_the_outbox_with_its_messages(db, login_as):
    client = login_as("manager")
    notifications.notify(
        "shipment.dispatched", ["lab@chu.fr"], "Envoi S-7 parti", "Colis <b>réfrigéré</b>"
    )
    page = client.get("/outbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "shipment.dispatched" in html and "lab@chu.fr" in html
    assert "Envoi S-7 parti" in html
    assert "Colis &lt;b&gt;réfrigéré&lt;/b&gt;" in html  # the body, escaped
    assert "pending" in html


def test_a_researcher_may_not_see_the_outbox(login_as):
    client = login_as("researcher")
    assert client.get("/outbox").status_code == 403
    assert client.post("/outbox/deliver").status_code == 403


def test_the_outbox_filters_the_pending_messages(db, login_as):
    client = login_as("manager")
    notifications.notify("request.approved", ["a@chu.fr"], "Already sent", "b")
    db.session.execute(sa.update(OutboxMessage).values(sent_at=sa.func.current_timestamp()))
    notifications.notify("request.approved", ["a@chu.fr"], "Still waiting", "b")
    html = client.get("/outbox?pending=1").get_data(as_text=True)
    assert "Still waiting" in html and "Already sent" not in html
    html = client.get("/outbox").get_data(as_text=True)
    assert "Still waiting" in html and "Already sent" in html


def test_delivering_without_e_mail_configured_holds_the_messages(db, login_as):
    client = login_as("manager")
    notifications.notify("request.approved", ["a@chu.fr"], "S", "b")
    response = client.post("/outbox/deliver", follow_redirects=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "0 sent, 0 failed, 1 held (e-mail delivery is not configured)" in html
    assert _messages(db)[0].sent_at is None


def test_the_deliver_button_sends_the_pending_messages(app, db, login_as, smtp_server):
    _smtp_settings(app, smtp_server.port)
    client = login_as("admin")
    notifications.notify("request.approved", ["a@chu.fr"], "Approuvée", "Vous êtes prêt·e.")
    response = client.post("/outbox/deliver", follow_redirects=True)
    assert "1 sent, 0 failed, 0 held" in response.get_data(as_text=True)
    assert _messages(db)[0].sent_at is not None
    assert len(smtp_server.handler.envelopes) == 1


def test_a_misconfigured_delivery_says_which_setting_is_missing(app, db, login_as):
    app.config.update(NOTIFIER="smtp", MAIL_SERVER=None, MAIL_SENDER="bank@chu.fr")
    client = login_as("manager")
    response = client.post("/outbox/deliver", follow_redirects=True)
    assert "MAIL_SERVER" in response.get_data(as_text=True)


def test_the_command_line_delivers_and_lists_the_outbox(app, db, smtp_server):
    notifications.notify("request.submitted", ["m@chu.fr"], "One", "b")
    notifications.notify("request.submitted", ["m@chu.fr"], "Two", "b")
    db.session.commit()
    runner = app.test_cli_runner()
    held = runner.invoke(args=["notifications", "deliver"])
    assert held.exit_code == 0, held.output
    assert "0 sent, 0 failed, 2 held" in held.output
    _smtp_settings(app, smtp_server.port)
    sent = runner.invoke(args=["notifications", "deliver", "--limit", "1"])
    assert sent.exit_code == 0, sent.output
    assert "1 sent, 0 failed, 0 held" in sent.output
    assert [m.sent_at is not None for m in _messages(db)] == [True, False]
    listed = runner.invoke(args=["notifications", "list", "--pending"])
    assert listed.exit_code == 0, listed.output
    assert "Two" in listed.output and "One" not in listed.output
    everything = runner.invoke(args=["notifications", "list"]).output
    assert "One" in everything and "sent" in everything


def test_the_command_line_refuses_a_misconfigured_delivery(app, db):
    app.config.update(NOTIFIER="smtp", MAIL_SERVER="smtp.chu.fr", MAIL_SENDER="")
    result = app.test_cli_runner().invoke(args=["notifications", "deliver"])
    assert result.exit_code == 1 and "MAIL_SENDER" in result.output


@pytest.mark.parametrize(
    "email", ["alice", "alice@", "@chu.fr", "alice@chu", "a b@chu.fr", "a@b,c.fr"]
)
def test_an_account_with_a_bad_e_mail_is_refused_naming_the_field(db, sites, email):
    with pytest.raises(Invalid) as refused:
        auth.create_user("alice", "researcher", PASSWORD, email=email)
    assert "email" in refused.value.fields


def test_an_account_keeps_its_e_mail_or_none(db, sites):
    assert auth.create_user("alice", "researcher", PASSWORD, email=" a@chu.fr ").email == "a@chu.fr"
    assert auth.create_user("bob", "researcher", PASSWORD, email="").email is None


def test_the_accounts_page_refuses_a_bad_e_mail_on_its_field(db, login_as):
    client = login_as("admin")
    form = {"username": "carol", "role": "researcher", "site": "", "password": PASSWORD}
    response = client.post("/users", data={**form, "email": "carol-at-chu.fr"})
    html = refused(client, response)
    email_field = html[html.rindex("has-error", 0, html.index('name="email"')) :]
    email_field = email_field[: email_field.index("</div>")]
    assert "carol-at-chu.fr is not an e-mail address" in email_field  # on the field itself
    assert db.session.execute(sa.select(User).where(User.username == "carol")).first() is None
    created = client.post("/users", data={**form, "email": "carol@chu.fr"}, follow_redirects=True)
    assert created.status_code == 200 and "carol@chu.fr" in created.get_data(as_text=True)


def test_user_create_on_the_command_line_takes_an_e_mail(app, db, sites):
    db.session.commit()
    runner = app.test_cli_runner()
    args = ["user", "create", "dan", "--role", "manager", "--password", PASSWORD]
    result = runner.invoke(args=[*args, "--email", "dan@chu.fr"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert auth.get_user("dan").email == "dan@chu.fr"
    bad = runner.invoke(args=["user", "create", "eve", "--role", "manager", "--email", "eve"])
    assert bad.exit_code == 1 and "not an e-mail address" in bad.output
