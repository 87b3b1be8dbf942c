"""A refused form, in the browser, says what is wrong where it is typed: each invalid input
is marked (aria-invalid) and described by its message (aria-describedby), which names its
field; a summary at the top of the form lists the messages as links to their fields and
has the focus when the page opens (issue 16, point 2; the login, point 10)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path, wait_for_focus

pytestmark = [pytest.mark.e2e, pytest.mark.markup]
PARTICIPANT = "LIM-001"
TIMES = {  # required of a collected tube: field → label
    "collected_at": "Blood drawn at",
    "spun_at": "Centrifugation started at",
    "frozen_at": "Aliquots frozen at",
}
TUBES = ("SST", "EDTA")


@pytest.fixture
def bank(seed):
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", site="LIM", name="tech.lim", password=PASSWORD)
        factories.user("researcher", name="researcher", password=PASSWORD)
        factories.participant("LIM", code=PARTICIPANT)
        factories.user("technician", name="tech.bio", password=PASSWORD)
        factories.freezer({})


def submit(page, name: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).click()


def described_by(page, field_id: str) -> list[str]:
    """The texts of the elements ``field_id``'s aria-describedby names, each of which must
    exist and be visible."""
    field = page.locator(f"[id='{field_id}']")
    refs = (field.get_attribute("aria-describedby") or "").split()
    assert refs, f"#{field_id} is described by nothing"
    texts = []
    for ref in refs:
        described = page.locator(f"[id='{ref}']")
        expect(described).to_be_visible()
        texts.append(described.inner_text().strip())
    return texts


def assert_tied(page, field_id: str, message: str) -> None:
    """``field_id`` is invalid, and described by ``message`` shown on the page."""
    expect(page.locator(f"[id='{field_id}']")).to_have_attribute("aria-invalid", "true")
    assert message in described_by(page, field_id)
    expect(page.locator(f"[id='{field_id}']")).to_have_accessible_description(
        re.compile(re.escape(message))
    )


def summary_links(page) -> dict[str, str]:
    """The summary's links, target id → text; every target exists. The summary has the
    focus."""
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_visible()
    wait_for_focus(page, summary.get_attribute("id"))
    links = {}
    for link in summary.locator("a").all():
        target = link.get_attribute("href").removeprefix("#")
        expect(page.locator(f"[id='{target}']")).to_have_count(1)
        links[target] = link.inner_text().strip()
    return links


def test_a_refused_registration_ties_each_message_to_its_tube_and_field(page, log_in, bank):
    log_in("tech.lim")
    page.goto(f"/participants/{PARTICIPANT}/register")
    page.select_option("#visit", "BL")

    submit(page, "Register and create aliquots")  # every time left empty

    assert path(page) == f"/participants/{PARTICIPANT}/register"
    links = summary_links(page)
    expect(page.locator("[data-error-summary] h2")).to_have_text("There are 6 problems")
    expected = {
        f"tubes-{index}-{name}": f"{label} (tube {tube}): Required for a collected tube."
        for index, tube in enumerate(TUBES)
        for name, label in TIMES.items()
    }
    assert links == expected  # six messages, none the same
    for field_id, message in expected.items():
        assert_tied(page, field_id, message)
    # The expected format, given beside the field, still describes it.
    hint = described_by(page, "tubes-0-collected_at")[0]
    assert "hh:mm" in hint

    page.locator("[data-error-summary] a[href='#tubes-1-frozen_at']").click()
    wait_for_focus(page, "tubes-1-frozen_at")


def test_a_refused_request_ties_each_message_to_its_field(page, log_in, bank):
    log_in("researcher")
    page.goto("/requests/new")
    page.fill("#title", "VEGF in serum")

    submit(page, "Submit the request")

    assert path(page) == "/requests/new"
    expected = {
        "aim": "Project and aim: This field is required.",
        "receiving_lab": "Receiving laboratory: This field is required.",
        "contact_name": "Contact at the laboratory: This field is required.",
        "contact_email": "Contact e-mail: This field is required.",
    }
    assert summary_links(page) == expected
    for field_id, message in expected.items():
        assert_tied(page, field_id, message)
    expect(page.locator("#title")).not_to_have_attribute("aria-invalid", "true")
    assert described_by(page, "aim")[0].startswith("What will be measured")  # its hint


def test_a_refused_participant_ties_each_message_to_its_field(page, log_in, bank):
    log_in("tech.lim")
    page.goto("/participants/new")

    submit(page, "Enrol")

    assert path(page) == "/participants/new"
    expected = {
        "code": "Study code: This field is required.",
        "included_on": "Inclusion date: This field is required.",
        "consent_given_on": "Biobank consent signed on: This field is required.",
    }
    assert summary_links(page) == expected
    for field_id, message in expected.items():
        assert_tied(page, field_id, message)


def test_a_wrong_password_is_tied_to_both_fields_and_takes_the_focus(page, log_in, bank):
    log_in("tech.lim", "not the right password")

    assert path(page) == "/login"
    message = "Unknown user name or wrong password."
    assert summary_links(page) == {"password": message}
    assert_tied(page, "username", message)
    assert_tied(page, "password", message)

    page.locator("[data-error-summary] a").click()
    wait_for_focus(page, "password")


def test_a_form_written_by_hand_ties_its_kept_refusal_to_each_field_it_names(page, log_in, bank):
    log_in("tech.bio")
    page.goto("/storage/containers/FR-0001")
    page.get_by_text("Record a temperature excursion").click()
    page.fill("#started_at", "2026-01-05 08:00")
    page.fill("#ended_at", "2026-01-05 09:00")
    page.fill("#highest_c", "warm")  # no number: the rule names the three fields

    submit(page, "Record it on every aliquot inside")

    assert path(page) == "/storage/containers/FR-0001"
    message = "Enter when the excursion started and ended, and the highest temperature."
    expected = {
        "started_at": f"Started at: {message}",
        "ended_at": f"Ended at: {message}",
        "highest_c": f"Highest temperature (°C): {message}",
    }
    assert summary_links(page) == expected
    for field_id, shown in expected.items():
        assert_tied(page, field_id, shown)
    assert described_by(page, "started_at")[0] == "yyyy-mm-dd hh:mm"  # the format, kept
    expect(page.locator("#started_at")).to_have_value("2026-01-05 08:00")
