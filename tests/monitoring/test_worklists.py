"""The home page's worklists: what each role has to do, counted.

Each count is checked at its boundaries (the day a visit window opens and closes, the 30
days of excursions to the minute), under the centre rule, against the list it links to,
and as one SQL statement whatever the number of participants."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from biobank.assays import pipeline
from biobank.assays import services as assays
from biobank.assays.example import make_plate
from biobank.auth import services as auth
from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.shipping import Dispatch
from biobank.monitoring import worklists
from biobank.monitoring.completeness import completeness
from biobank.notifications import services as notifications
from biobank.samples import services as samples
from biobank.samples.services import NotCollected
from biobank.storage import services as storage
from biobank.study import services as study
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request, stock

TODAY = date(2026, 6, 1)
DRY_ICE = Dispatch("World Courier", "WC123456", True, 5.0, "TL-42")
# POEMS-LENDEX, arm G1: baseline (days −28…0) and month 2 (days 49…63) only.
M2_OPENS, M2_CLOSES = 49, 63


def enrolled(code: str, included_days_ago: int, *, site="LIM", arm="G1", baseline=True):
    """A participant included ``included_days_ago`` days before TODAY, their baseline
    registered (so that only the later visits are left to count)."""
    factories.participant(
        site, arm, code=code, included_on=TODAY - timedelta(days=included_days_ago)
    )
    if baseline:
        factories.visit(code, "BL")
    return code


def counts(actor=None, today=TODAY) -> worklists.VisitCounts:
    return worklists.visit_counts(actor=actor, today=today)


class Statements:
    """The SQL statements sent while inside the block."""

    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def _seen(self, *_args):
        self.count += 1

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def page_text(client, url: str) -> str:
    response = client.get(url.split("#")[0])
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return html.unescape(response.get_data(as_text=True))


def shown_count(text: str, pattern: str) -> int:
    """The number a list page states (its "N requests" line)."""
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not on the page"
    return int(found[1])


def home_links(client) -> dict[str, tuple[int, str]]:
    """The home page's counts: title → (number, link)."""
    text = page_text(client, "/")
    return {
        title: (int(number.replace("\u202f", "").replace(",", "")), href)
        for href, number, title in re.findall(
            r'<a class="worklist-count" href="([^"]+)"><span class="worklist-number">([^<]+)'
            r'</span><span class="worklist-title">([^<]+)</span>',
            text,
        )
    }


# --- visits: the window's boundaries --------------------------------------------------------


@pytest.mark.parametrize(
    ("included_days_ago", "due", "overdue", "why"),
    [
        (M2_CLOSES + 1, 0, 1, "the M2 window closed yesterday"),
        (M2_CLOSES, 1, 0, "the M2 window closes today"),
        (M2_OPENS, 1, 0, "the M2 window opens today"),
        (M2_OPENS - 6, 1, 0, "the M2 window opens in 6 days, within the week"),
        (M2_OPENS - 7, 0, 0, "the M2 window opens in 7 days, next week"),
    ],
)
def test_a_visit_counts_as_due_or_overdue_by_its_window_on_the_day(
    db, sites, included_days_ago, due, overdue, why
):
    enrolled("LIM-001", included_days_ago)
    assert counts() == worklists.VisitCounts(due, overdue), why


def test_a_registered_visit_is_not_counted_even_when_no_tube_was_drawn(db, sites):
    code = enrolled("LIM-001", M2_CLOSES + 1)
    samples.register_collection(
        code,
        "M2",
        [],
        not_collected=[NotCollected("SST", "refused"), NotCollected("EDTA", "failed_draw")],
        collected_on=TODAY - timedelta(days=M2_CLOSES + 1 - 56),
        actor=None,
    )
    assert counts() == worklists.VisitCounts(0, 0)


def test_a_visit_of_another_arm_is_not_expected(db, sites):
    """Month 4 (days 98…126) is in arm G2's schedule only."""
    for code, arm in (("LIM-001", "G1"), ("LIM-002", "G2")):
        enrolled(code, 127, arm=arm)
        factories.visit(code, "M2")
    assert counts() == worklists.VisitCounts(0, 1)


def test_leaving_the_study_before_a_window_opens_means_the_visit_is_not_expected(db, sites):
    opened_on = TODAY - timedelta(days=15)  # month 2 of a participant included 64 days ago
    enrolled("LIM-001", M2_CLOSES + 1)
    study.record_leaving("LIM-001", opened_on - timedelta(days=1), "progression", actor=None)
    enrolled("LIM-002", M2_CLOSES + 1)
    study.record_leaving("LIM-002", opened_on, "progression", actor=None)
    assert counts() == worklists.VisitCounts(0, 1)  # LIM-002 left inside the window


def test_withdrawing_consent_inside_an_open_window_ends_it_that_day(db, sites):
    """Month 2 of a participant included 60 days ago is open from 11 days ago to in 3
    days: withdrawn yesterday, it closed yesterday (overdue); withdrawn today, it is
    still due today."""
    enrolled("LIM-001", 60)
    study.withdraw_consent("LIM-001", TODAY - timedelta(days=1), actor=None)
    enrolled("LIM-002", 60)
    study.withdraw_consent("LIM-002", TODAY, actor=None)
    assert counts() == worklists.VisitCounts(1, 1)


def test_visits_of_another_centre_are_never_counted(db, sites, make_user):
    enrolled("LIM-001", M2_CLOSES + 1)
    enrolled("PAR-001", M2_CLOSES + 1, site="PAR")
    enrolled("PAR-002", M2_OPENS, site="PAR")
    limoges, paris = make_user("technician", site="LIM"), make_user("technician", site="PAR")
    central = make_user("technician")
    assert counts(limoges) == worklists.VisitCounts(0, 1)
    assert counts(paris) == worklists.VisitCounts(1, 1)
    assert counts(central) == worklists.VisitCounts(1, 2)


def test_the_visit_counts_agree_with_the_completeness_page(db, sites):
    """Overdue: the visits the completeness page calls missing today; due this week: those
    it calls due on one of the next 7 days (every registered visit here has all its tubes,
    so each visit left to count has nothing registered)."""
    codes = {}
    for n, days_ago in enumerate((0, 10, 42, 43, 55, 63, 64, 100, 127, 160, 250, 300, 640)):
        for k, arm in enumerate(("G1", "G2")):
            codes[days_ago, arm] = enrolled(f"LIM-{2 * n + k + 1:03d}", days_ago, arm=arm)
    study.record_leaving(codes[100, "G2"], TODAY - timedelta(days=5), "toxicity", actor=None)
    study.record_leaving(codes[250, "G2"], TODAY - timedelta(days=200), "death", actor=None)
    study.withdraw_consent(codes[55, "G1"], TODAY - timedelta(days=2), actor=None)
    factories.visit(codes[127, "G2"], "M2")
    db.session.commit()

    def visits(status, as_of):
        found = completeness(actor=None, as_of=as_of, status=status).items
        return {(item.participant, item.visit) for item in found}

    due = set().union(*(visits("due", TODAY + timedelta(days=d)) for d in range(7)))
    assert counts() == worklists.VisitCounts(len(due), len(visits("missing", TODAY)))
    assert counts().overdue > 5 and counts().due_this_week > 3  # the mix covers both


# --- tubes, requests, shipments -------------------------------------------------------------


def test_tubes_to_store_are_those_registered_and_not_stored_in_the_centre(db, sites, make_user):
    factories.participant("LIM", code="LIM-001")
    registration = factories.visit("LIM-001", "BL")  # 5 serum and 5 plasma aliquots
    factories.participant("PAR", code="PAR-001")
    factories.visit("PAR-001", "BL")
    factories.freezer({"BX-0001": "Box 1"})
    storage.store_many([(registration.aliquots[0].barcode, "BX-0001", None)], actor=None)
    assert worklists.tubes_to_store(actor=make_user("technician", site="LIM")) == 9
    assert worklists.tubes_to_store(actor=make_user("technician", site="PAR")) == 10
    assert worklists.tubes_to_store(actor=make_user("technician")) == 19


@pytest.fixture
def people(db, sites):
    manager = auth.create_user("boss", "manager", PASSWORD, email="boss@chu.example")
    researcher = auth.create_user("curie", "researcher", PASSWORD, email="curie@lab.example")
    other = auth.create_user("meitner", "researcher", PASSWORD, email="lise@lab.example")
    technician = factories.user("technician", password=PASSWORD)
    db.session.commit()
    return manager, researcher, other, technician


@pytest.fixture
def bank(db, sites):
    factories.freezer({})
    return stock(db)


def test_requests_are_counted_by_status_a_researcher_sees_only_their_own(bank, people):
    manager, researcher, other, technician = people
    reviewed = serum_request(researcher, title="one")
    serum_request(researcher, title="two")
    serum_request(other, title="theirs")
    requests.start_review(reviewed.id, actor=manager)
    approved = serum_request(other, title="approved")
    chosen = [c.barcode for c in requests.propose(approved.id, actor=manager).selection.chosen]
    requests.approve(approved.id, chosen, actor=manager)

    assert worklists.requests_of_status(worklists.TO_REVIEW, actor=manager) == 3
    assert worklists.requests_of_status(shipping.PICKABLE_REQUESTS, actor=technician) == 1
    assert worklists.requests_by_status(actor=researcher) == {"submitted": 1, "under_review": 1}
    assert worklists.requests_by_status(actor=other) == {"submitted": 1, "approved": 1}


def transfer(destination: str, barcodes: list[str], actor) -> str:
    shipment = shipping.create_shipment(destination_site=destination, actor=actor)
    for code in barcodes:
        shipping.add_to_shipment(shipment.code, code, actor=actor)
    shipping.dispatch(shipment.code, DRY_ICE, actor=actor)
    return shipment.code


@pytest.fixture
def transfers(db, sites, make_user):
    """Two transfers on their way: LIM → the central biobank, the central biobank → LIM.
    Returns their codes and the tubes of the first."""
    factories.participant("LIM", code="LIM-001")
    tubes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
    to_bio = transfer("BIO", tubes[:3], make_user("technician", site="LIM"))
    to_lim = transfer("LIM", tubes[3:4], make_user("technician"))
    db.session.commit()
    return to_bio, to_lim, tubes[:3]


def test_shipments_to_receive_are_those_dispatched_to_the_users_centre(transfers, make_user):
    assert worklists.shipments_to_receive(actor=make_user("technician")) == 1  # central
    assert worklists.shipments_to_receive(actor=make_user("technician", site="LIM")) == 1
    assert worklists.shipments_to_receive(actor=make_user("technician", site="PAR")) == 0


def test_tubes_missing_at_receipt_stay_counted_until_found(transfers, make_user, db):
    to_bio, _to_lim, tubes = transfers
    central = make_user("technician")
    shipping.check_in(to_bio, tubes[0], actor=central)
    shipping.complete_receipt(to_bio, condition="dry ice left", actor=central)
    manager = make_user("manager")
    assert worklists.tubes_missing(actor=manager) == worklists.MissingTubes(2, 1)
    assert worklists.tubes_missing(actor=make_user("manager", site="LIM")).tubes == 2
    assert worklists.tubes_missing(actor=make_user("manager", site="PAR")).tubes == 0
    assert worklists.shipments_to_receive(actor=central) == 0  # received now

    shipping.record_found(tubes[1], "Freezer room, on the floor", actor=central)
    assert worklists.tubes_missing(actor=manager) == worklists.MissingTubes(1, 1)


# --- runs, excursions, notifications --------------------------------------------------------


def test_runs_to_accept_are_the_previews_of_the_centres_tubes(bank, db, make_user):
    serum = bank[("LIM-001", "BL", "SER")][0]
    accepted, waiting = make_plate({serum: 500.0}), make_plate({serum: 400.0})
    options = pipeline.Options(read=450, reference=540)
    run = assays.preview_plate(
        accepted.reader, "a.xlsx", accepted.plate_map, "VEGF", options, actor=None
    ).run
    assays.preview_plate(waiting.reader, "b.xlsx", waiting.plate_map, "VEGF", options, actor=None)
    assays.accept_run(run.code, actor=None)
    db.session.commit()
    assert worklists.runs_to_accept(actor=make_user("manager")) == 1
    assert worklists.runs_to_accept(actor=make_user("manager", site="LIM")) == 1
    assert worklists.runs_to_accept(actor=make_user("manager", site="PAR")) == 0


def test_excursions_are_counted_once_each_over_the_last_30_days_to_the_minute(bank, db, make_user):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    limit = now - timedelta(days=worklists.EXCURSION_DAYS)
    for ended in (limit + timedelta(minutes=1), limit, limit - timedelta(minutes=1)):
        storage.record_excursion(
            "FR-0001", started_at=ended - timedelta(hours=2), ended_at=ended, highest_c=-41.5,
            actor=None,
        )  # fmt: skip
    db.session.commit()

    def seen(actor):
        return worklists.worklists(actor=actor, today=TODAY, now=now).decisions.excursions

    # Each was recorded on every tube inside the freezer: counted once each all the same.
    assert seen(make_user("manager")) == 2
    assert seen(make_user("manager", site="LIM")) == 2
    assert seen(make_user("manager", site="PAR")) == 0


@pytest.fixture
def outbox(db, sites):
    """A Limoges manager with an address; messages sent, pending and failed, to them and
    to an address that differs from theirs only where theirs has a "_"."""
    limoges = auth.create_user(
        "lim_boss", "manager", PASSWORD, site_code="LIM", email="lim_boss@chu.example"
    )
    auth.create_user("par", "manager", PASSWORD, site_code="PAR", email="par@chu.example")

    def message(to, *, sent=False, error=""):
        written = notifications.notify("request.approved", [to], "Request", "Approved")
        written.sent_at = datetime(2026, 6, 1, tzinfo=UTC) if sent else None
        written.last_error = error
        return written

    message("lim_boss@chu.example", error="SMTPRecipientsRefused")
    message("lim_boss@chu.example", sent=True)
    message("lim_boss@chu.example")
    message("limXboss@chu.example", error="SMTPRecipientsRefused")
    message("par@chu.example", error="timeout")
    db.session.commit()
    return limoges


def test_failed_notifications_are_those_of_the_outbox_the_user_reads(outbox, make_user):
    assert worklists.failed_notifications(actor=make_user("manager")) == 3
    # "_" in an address is a letter, not a wildcard: limXboss@ is another person's mail.
    assert worklists.failed_notifications(actor=outbox) == 1
    assert notifications.list_outbox(actor=outbox).total == 3  # failed, sent, pending
    assert notifications.list_outbox(actor=outbox, failed_only=True).total == 1


# --- one statement per count ----------------------------------------------------------------


@pytest.mark.parametrize("participants", [2, 40])
def test_each_count_is_one_statement_whatever_the_number_of_participants(
    db, sites, make_user, participants
):
    for n in range(participants):
        enrolled(f"LIM-{n:03d}", 20 + 3 * n, arm=("G1", "G2")[n % 2], baseline=n % 3 == 0)
    manager, bound = make_user("manager"), make_user("manager", site="LIM")
    schedule = worklists.current_schedule()
    db.session.commit()
    for actor in (manager, bound):
        assert actor.role and actor.site_id in (None, actor.site_id)  # loaded after the commit
    calls = [
        lambda actor: worklists.visit_counts(actor=actor, today=TODAY, schedule=schedule),
        lambda actor: worklists.tubes_to_store(actor=actor),
        lambda actor: worklists.requests_of_status(worklists.TO_REVIEW, actor=actor),
        lambda actor: worklists.shipments_to_receive(actor=actor),
        lambda actor: worklists.excursions_since(datetime(2026, 5, 1, tzinfo=UTC), actor=actor),
        lambda actor: worklists.tubes_missing(actor=actor),
        lambda actor: worklists.failed_notifications(actor=actor),
        lambda actor: worklists.requests_by_status(actor=actor),
    ]
    for actor in (manager, bound):
        for call in calls:
            with Statements(db.engine) as seen:
                call(actor)
            assert seen.count == 1, (actor, call)
    with Statements(db.engine) as seen:
        worklists.runs_to_accept(actor=manager)
    assert seen.count == 1
    # Bound to a centre, the assays' rule reads the previews awaiting a decision first.
    with Statements(db.engine) as seen:
        worklists.runs_to_accept(actor=bound)
    assert seen.count == 2


def test_the_schedule_is_read_in_one_statement_once_its_protocol_is_known(db, sites):
    worklists.current_schedule()  # the protocol version's visits, read once per process
    with Statements(db.engine) as seen:
        assert {visit.code for _study, visit in worklists.current_schedule()} == {
            "BL", "M2", "M4", "M6", "EOI", "EOM"
        }  # fmt: skip
    assert seen.count == 1


# --- the home page --------------------------------------------------------------------------


@pytest.fixture
def frozen_today(monkeypatch):
    """Now is 1 June 2026 at noon, Paris time, for the home page and the storage page."""
    import biobank.storage.views

    def now():
        return datetime(2026, 6, 1, 10, 0, tzinfo=UTC)

    monkeypatch.setattr(worklists, "utcnow", now)
    monkeypatch.setattr(biobank.storage.views, "utcnow", now)


def test_the_technicians_counts_lead_to_lists_of_as_many(frozen_today, transfers, db, login_as):
    enrolled("PAR-001", M2_CLOSES + 1, site="PAR")
    enrolled("PAR-002", M2_OPENS - 6, site="PAR")
    db.session.commit()
    technician = login_as("technician", site="PAR")
    links = home_links(technician)
    assert links["Visits overdue"] == (
        1,
        "/study/completeness?status=missing&as_of=2026-06-01",
    )
    due, to_draw = links["Visits due this week"]
    assert (due, to_draw) == (1, "/study/completeness?due_by=2026-06-07&as_of=2026-06-01")
    # PAR-002's month 2 window opens in six days: listed, tube by tube, as upcoming.
    listed = page_text(technician, to_draw)
    assert "PAR-002" in listed and "PAR-001" not in listed and "LIM-001" not in listed
    overdue = page_text(technician, links["Visits overdue"][1])
    assert "PAR-001" in overdue and "PAR-002" not in overdue and "LIM-001" not in overdue
    tubes, store = links["Tubes to store"]
    assert tubes == 20  # two baselines of 10 aliquots; another centre's transfers unseen
    text = page_text(technician, store)
    assert shown_count(text, r"(\d+) tubes registered, not stored yet") == tubes
    assert "Shipments to receive" not in links  # none is coming to Paris

    central = login_as("technician")
    number, url = home_links(central)["Shipments to receive"]
    assert number == 1
    assert shown_count(page_text(central, url), r"(\d+) shipments?\b") == 1


def test_the_managers_counts_lead_to_lists_of_as_many(
    frozen_today, bank, people, outbox, db, login_as
):
    manager, researcher, _other, _technician = people
    serum_request(researcher, title="one")
    reviewed = serum_request(researcher, title="two")
    requests.start_review(reviewed.id, actor=manager)
    serum = bank[("LIM-001", "BL", "SER")][0]
    plate = make_plate({serum: 500.0})
    assays.preview_plate(
        plate.reader, "a.xlsx", plate.plate_map, "VEGF", pipeline.Options(read=450, reference=540),
        actor=None,
    )  # fmt: skip
    ended = datetime(2026, 5, 30, 6, 0, tzinfo=UTC)
    storage.record_excursion(
        "FR-0001", started_at=ended - timedelta(hours=3), ended_at=ended, highest_c=-50.0,
        actor=None,
    )  # fmt: skip
    db.session.commit()
    client = login_as("manager")
    links = home_links(client)

    number, url = links["Requests to review"]
    assert number == 2
    assert shown_count(page_text(client, url), r"(\d+) requests") == 2
    number, url = links["Assay runs to accept"]
    assert number == 1 and url == "/assays?status=preview"
    assert page_text(client, url).count('href="/assays/runs/') == 1
    number, url = links["Temperature excursions"]
    assert number == 1
    assert shown_count(page_text(client, url), r"(\d+) excursions?\b") == 1
    number, url = links["Notifications that failed"]
    assert number == 3
    assert shown_count(page_text(client, url), r"(\d+) messages?\b") == 3


def test_a_shipment_with_tubes_missing_is_listed_from_the_managers_count(
    frozen_today, transfers, make_user, login_as, db
):
    to_bio, _to_lim, _tubes = transfers
    shipping.complete_receipt(to_bio, condition="lost in transit", actor=make_user("technician"))
    db.session.commit()
    client = login_as("manager", site="LIM")
    text = page_text(client, "/")
    assert "in 1 shipment" in text
    number, url = home_links(client)["Tubes missing since a receipt"]
    assert number == 3
    listed = page_text(client, url)
    assert shown_count(listed, r"(\d+) shipments?\b") == 1 and to_bio in listed


def test_a_researcher_sees_their_own_requests_by_status_and_nothing_of_the_bench(
    frozen_today, bank, people, login_as, db
):
    client = login_as("researcher")
    text = page_text(client, "/")
    assert "My requests" in text and "No request yet." in text
    assert "At the bench" not in text and "To decide" not in text

    serum_request(client.user, title="mine")
    serum_request(people[1], title="someone else's")
    db.session.commit()
    links = home_links(client)
    assert links == {"submitted": (1, "/requests?status=submitted")}
    assert shown_count(page_text(client, "/requests?status=submitted"), r"(\d+) requests?") == 1


def test_nothing_to_do_is_said_quietly_without_a_link(frozen_today, db, sites, login_as):
    client = login_as("technician")
    text = page_text(client, "/")
    assert home_links(client) == {}
    assert text.count("nothing to do") == 5  # due, overdue, to store, to pick, to receive
    assert "Scan a tube" in text  # the tiles stay
