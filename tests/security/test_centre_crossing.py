"""A user bound to a centre reads nothing of another centre's participants, aliquots,
results, pick lists, shipments or containers, and reserves none of its aliquots.

The world: Limoges (LIM) and Paris (PAR), each with a participant or two, a freezer and
a box; a LIM tube stored in the PAR box by the central biobank; requests holding LIM
tubes only, PAR and LIM tubes, or none yet; a LIM transfer to the central biobank and a
central shipment of LIM tubes; assay runs of LIM tubes only, of both centres, and a
result sheet of both centres awaiting a decision. A Paris user of every role then walks
every page and API route of the application.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile
import zlib

import pytest
import sqlalchemy as sa

from biobank.assays import pipeline
from biobank.assays import services as assays
from biobank.assays.example import make_plate
from biobank.assays.models import AssayRun
from biobank.auth import services as auth
from biobank.auth.models import User
from biobank.auth.roles import Role, role_may
from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.criteria import parse
from biobank.distribution.models import Reservation
from biobank.errors import DomainError
from biobank.notifications.models import OutboxMessage
from biobank.storage import services as storage
from tests import factories
from tests.assays.conftest import sheet
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request

BOX_TYPE = "81-place 2-inch cryobox"
# A value measured on a LIM aliquot, written so that it can be searched for in any page.
LIM_VALUE = "31.37"


def _freezer(site: str, number: int) -> dict[str, str]:
    """A room of ``site`` with a −80 °C freezer, a shelf and a 9 × 9 box; their barcodes."""
    codes = {
        kind: f"{prefix}-{number:04d}"
        for kind, prefix in (("room", "RM"), ("freezer", "FR"), ("shelf", "SH"), ("box", "BX"))
    }
    storage.create_container("room", f"Room {site}", site=site, barcode=codes["room"], actor=None)
    storage.create_container(
        "freezer",
        f"Freezer {site}",
        parent=codes["room"],
        barcode=codes["freezer"],
        temperature_class="-80",
        set_point_c=-80,
        actor=None,
    )
    storage.create_container(
        "shelf", "Shelf 1", parent=codes["freezer"], barcode=codes["shelf"], actor=None
    )
    storage.create_container(
        "box",
        f"Box {site}",
        parent=codes["shelf"],
        barcode=codes["box"],
        type_name=BOX_TYPE,
        actor=None,
    )
    return codes


def _serum(registration) -> list[str]:
    return [a.barcode for a in registration.aliquots if a.sample_type == "SER"]


def _submit(researcher, title: str):
    return serum_request(researcher, title=title)


@pytest.fixture
def world(db, sites, protocol):
    """The two centres' data, built by the central biobank and a LIM technician."""
    storage.create_container_type(BOX_TYPE, "box", rows=9, cols=9, actor=None)
    lim_store, par_store = _freezer("LIM", 101), _freezer("PAR", 201)
    registrations = {}
    for site, code in (("LIM", "LIM-071"), ("LIM", "LIM-072"), ("PAR", "PAR-081")):
        factories.participant(site, code=code)
        registrations[code] = factories.visit(code, "BL")
    lim1, lim2, par1 = (_serum(registrations[c]) for c in ("LIM-071", "LIM-072", "PAR-081"))
    storage.store_many(
        [(code, lim_store["box"], None) for code in lim1]
        + [(code, par_store["box"], None) for code in par1]
        # A LIM tube the central biobank put into the Paris box.
        + [(lim2[0], par_store["box"], None)],
        actor=None,
    )
    researcher = factories.user("researcher", name="researcher", password=PASSWORD)
    manager = factories.user("manager", name="central.manager", password=PASSWORD)
    lim_tech = factories.user("technician", site="LIM", name="tech.lim", password=PASSWORD)
    # R00001 holds LIM tubes only, R00002 a PAR and a LIM tube, R00003 awaits review.
    lim_only = _submit(researcher, "LIM only")
    requests.approve(lim_only.id, [lim1[0]], actor=manager)
    mixed = _submit(researcher, "Both centres")
    requests.approve(mixed.id, [par1[0], lim1[1]], actor=manager)
    waiting = _submit(researcher, "Awaiting review")
    # S00001: a LIM transfer to the central biobank; S00002: the central biobank's shipment
    # of the LIM-only request.
    transfer = shipping.create_shipment(destination_site="BIO", actor=lim_tech)
    shipping.add_to_shipment(transfer.code, lim1[2], actor=lim_tech)
    central = shipping.create_shipment(request_id=lim_only.id, actor=manager)
    shipping.add_to_shipment(central.code, lim1[0], actor=manager)
    # A00001: a plate of LIM tubes only; A00002: a plate of both centres; A00003: a result
    # sheet of both centres, not decided yet.
    options = pipeline.Options(read=450, reference=540)
    for values in ({lim1[3]: 900.0, lim2[1]: 300.0}, {lim1[4]: 600.0, par1[1]: 80.0}):
        plate = make_plate(values)
        # Both plates measure LIM-071's baseline (two of its aliquots): the second is a
        # re-assay, accepted with confirmation.
        run = assays.preview_plate(
            plate.reader, "vegf.xlsx", plate.plate_map, "VEGF", options,
            reassay_reason="second baseline aliquot", actor=None,
        ).run  # fmt: skip
        assays.accept_run(run.code, confirm=True, actor=None)
    rows = [
        [lim2[2], "VEGF", LIM_VALUE, "pg/mL", "ELISA", "02/03/2026", ""],
        [par1[2], "VEGF", "12.5", "pg/mL", "ELISA", "02/03/2026", ""],
    ]
    assays.preview_results(sheet(rows), "vegf-sheet.xlsx", actor=None)
    db.session.commit()
    lim_barcodes = [a.barcode for c in ("LIM-071", "LIM-072") for a in registrations[c].aliquots]
    return {
        "lim": lim1,
        "lim2": lim2,
        "par": par1,
        "lim_barcodes": lim_barcodes,
        "lim_store": lim_store,
        "par_store": par_store,
        "requests": {"lim_only": lim_only.id, "mixed": mixed.id, "waiting": waiting.id},
        "shipments": [transfer.code, central.code],
        "runs": {"lim_only": "A00001", "mixed": "A00002", "sheet": "A00003"},
    }


def _markers(world) -> list[str]:
    """What of Limoges no Paris user may read."""
    return [
        *world["lim_barcodes"],
        "LIM-071",
        "LIM-072",
        *world["lim_store"].values(),
        *world["shipments"],
        world["runs"]["lim_only"],
        LIM_VALUE,
    ]


# --- reading a response, whatever it is -------------------------------------------------


def _pdf_text(content: bytes) -> str:
    """The PDF's bytes with its compressed streams inflated (what the text operators and
    the core fonts' strings are written in)."""
    parts = [content.decode("latin-1")]
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", content, re.S):
        with contextlib.suppress(zlib.error):
            parts.append(zlib.decompress(stream).decode("latin-1"))
    return "\n".join(parts)


def _xlsx_text(content: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        return "\n".join(
            book.read(name).decode("utf-8") for name in book.namelist() if name.endswith(".xml")
        )


def _zip_text(content: bytes) -> str:
    """Every file of a zip (the SDTM export's transport files, CSV and define document),
    uncompressed."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return "\n".join(
            archive.read(name).decode("utf-8", errors="replace") for name in archive.namelist()
        )


def body_text(response) -> str:
    content = response.get_data()
    kind = response.mimetype or ""
    if kind == "application/pdf":
        return _pdf_text(content)
    if "spreadsheetml" in kind:
        return _xlsx_text(content)
    if kind == "application/zip":
        return _zip_text(content)
    if kind.startswith("image/png"):
        return ""  # a picture: what it may draw is checked by the status of its page
    return content.decode("utf-8", errors="replace")


def leaks(response, markers: list[str], url: str) -> list[str]:
    """The markers found in the body, except those the URL itself names (a "not found"
    message repeats what was asked for)."""
    text = body_text(response)
    return [m for m in markers if m in text and m not in url]


# --- (a) the probes -----------------------------------------------------------------------


def _run_urls(code: str) -> list[str]:
    return [f"/api/v1/assay-runs/{code}", f"/assays/runs/{code}"]


def _pick_urls(request_id: int) -> list[str]:
    return [
        f"/api/v1/requests/{request_id}/pick-list",
        f"/api/v1/requests/{request_id}/pick-list.pdf",
        f"/requests/{request_id}/pick",
        f"/requests/{request_id}/pick-list.pdf",
    ]


def _clients(login_as, api_as, role: str, site: str | None):
    return {"page": login_as(role, site=site), "api": api_as(role, site=site)}


def _get(clients, url):
    return clients["api" if url.startswith("/api/") else "page"].get(url)


@pytest.mark.parametrize("role", ["technician", "manager"])
def test_a_paris_user_is_told_a_limoges_assay_run_does_not_exist(world, login_as, api_as, role):
    paris, lim_only = _clients(login_as, api_as, role, "PAR"), world["runs"]["lim_only"]
    for url in _run_urls(lim_only):
        response = _get(paris, url)
        assert response.status_code == 404, url
        assert not leaks(response, _markers(world), url), url
    for url in [*_run_urls(lim_only), f"/assays/runs/{lim_only}/curve.png"]:
        for site in (None, "LIM"):
            response = _get(_clients(login_as, api_as, role, site), url)
            assert response.status_code == 200, (site, url)
            if "curve" not in url:
                assert world["lim"][3] in response.get_data(as_text=True), (site, url)


def test_a_paris_user_sees_of_a_run_of_both_centres_only_the_paris_samples(
    world, db, login_as, api_as
):
    paris = _clients(login_as, api_as, "technician", "PAR")
    runs = world["runs"]
    for code, paris_tube in ((runs["mixed"], world["par"][1]), (runs["sheet"], world["par"][2])):
        for url in _run_urls(code):
            response = _get(paris, url)
            assert response.status_code == 200, url
            assert paris_tube in response.get_data(as_text=True), url
            assert not leaks(response, _markers(world), url), url
        central = _get(_clients(login_as, api_as, "technician", None), _run_urls(code)[0])
        stored = db.session.get(AssayRun, int(code[1:])).preview
        assert central.get_json()["preview"] == json.loads(stored)
    listed = paris["api"].get("/api/v1/assay-runs").get_json()
    assert [r["code"] for r in listed["items"]] == [runs["sheet"], runs["mixed"]]
    assert listed["total"] == 2


def test_a_paris_technician_is_told_a_limoges_pick_list_does_not_exist(world, login_as, api_as):
    paris = _clients(login_as, api_as, "technician", "PAR")
    for url in _pick_urls(world["requests"]["lim_only"]):
        response = _get(paris, url)
        assert response.status_code == 404, url
        assert not leaks(response, _markers(world), url), url
    for site in (None, "LIM"):
        clients = _clients(login_as, api_as, "technician", site)
        for url in _pick_urls(world["requests"]["lim_only"]):
            assert _get(clients, url).status_code == 200, (site, url)
        items = clients["api"].get(f"/api/v1/requests/{world['requests']['lim_only']}/pick-list")
        assert [i["barcode"] for i in items.get_json()["items"]] == [world["lim"][0]]
        assert items.get_json()["items"][0]["participant"] == "LIM-071"


def test_a_paris_technician_picks_only_the_paris_tubes_of_a_request_of_both_centres(
    world, login_as, api_as
):
    paris = _clients(login_as, api_as, "technician", "PAR")
    mixed = world["requests"]["mixed"]
    for url in _pick_urls(mixed):
        response = _get(paris, url)
        assert response.status_code == 200, url
        assert not leaks(response, _markers(world), url), url
    items = paris["api"].get(f"/api/v1/requests/{mixed}/pick-list").get_json()["items"]
    assert [i["barcode"] for i in items] == [world["par"][0]]
    central = _clients(login_as, api_as, "technician", None)["api"]
    items = central.get(f"/api/v1/requests/{mixed}/pick-list").get_json()["items"]
    assert sorted(i["barcode"] for i in items) == sorted([world["par"][0], world["lim"][1]])


def _proposed(client, request_id: int) -> set[str]:
    proposal = client.get(f"/api/v1/requests/{request_id}/proposal?allow_last=true")
    assert proposal.status_code == 200
    return {a["barcode"] for a in proposal.get_json()["aliquots"]}


def test_a_paris_manager_is_proposed_only_paris_aliquots(world, login_as, api_as):
    waiting = world["requests"]["waiting"]
    paris = _clients(login_as, api_as, "manager", "PAR")
    chosen = _proposed(paris["api"], waiting)
    assert chosen and chosen <= set(world["par"])
    review = paris["page"].get(f"/requests/{waiting}/review?allow_last=1")
    assert review.status_code == 200
    assert not leaks(review, _markers(world), "")
    assert _proposed(api_as("manager", site="LIM"), waiting) <= set(world["lim"] + world["lim2"])
    central = _proposed(api_as("manager"), waiting)
    assert central & set(world["lim"] + world["lim2"]) and central & set(world["par"])


# --- (c) approval ---------------------------------------------------------------------------


def _reserved(db, request_id: int) -> list[int]:
    found = db.session.execute(
        sa.select(Reservation.aliquot_id).where(Reservation.request_id == request_id)
    ).all()
    db.session.rollback()
    return found


def _available_lim(world) -> list[str]:
    return [world["lim"][3], world["lim"][4]]  # stored, reserved by no request


def test_the_approval_service_refuses_a_paris_manager_limoges_aliquots(world, db, make_user):
    manager = make_user("manager", site="PAR")
    waiting = world["requests"]["waiting"]
    for barcodes in (_available_lim(world)[:1], [world["par"][3], _available_lim(world)[0]]):
        with pytest.raises(DomainError) as refused:
            requests.approve(waiting, barcodes, override_reason="test", actor=manager)
        assert refused.value.code == "aliquot.not_found"
        db.session.rollback()
    assert _reserved(db, waiting) == []
    # The same tube is reserved for a manager of its own centre.
    lim_manager = make_user("manager", site="LIM")
    approval = requests.approve(
        waiting, _available_lim(world)[:1], override_reason="test", actor=lim_manager
    )
    assert approval.reserved == 1


def test_a_paris_manager_cannot_approve_limoges_aliquots_through_the_api(world, db, api_as):
    paris = api_as("manager", site="PAR")
    waiting = world["requests"]["waiting"]
    unknown = paris.post(
        f"/api/v1/requests/{waiting}/approve",
        json={"aliquots": ["NOSUCHTUBE"], "override_reason": "test"},
    )
    for barcodes in (_available_lim(world)[:1], [world["par"][3], _available_lim(world)[0]]):
        response = paris.post(
            f"/api/v1/requests/{waiting}/approve",
            json={"aliquots": barcodes, "override_reason": "test"},
        )
        # Answered as a tube that does not exist: nothing says it is at another centre.
        assert response.status_code == unknown.status_code
        assert response.get_json()["error"]["code"] == "aliquot.not_found"
        assert not leaks(response, ["LIM-071", "LIM-072", *world["lim_store"].values()], "")
    assert _reserved(db, waiting) == []
    allowed = paris.post(
        f"/api/v1/requests/{waiting}/approve",
        json={"aliquots": [world["par"][3]], "override_reason": "test"},
    )
    assert allowed.status_code == 200, allowed.get_json()


def test_a_paris_manager_cannot_approve_limoges_aliquots_through_the_page(world, db, login_as):
    paris = login_as("manager", site="PAR")
    waiting = world["requests"]["waiting"]
    barcodes = [world["par"][3], _available_lim(world)[0]]
    response = paris.post(
        f"/requests/{waiting}/approve",
        data={"aliquots": " ".join(barcodes), "override_reason": "test"},
    )
    assert response.status_code == 303
    assert f"/requests/{waiting}/review" in response.headers["Location"]
    assert _reserved(db, waiting) == []
    page = paris.get(response.headers["Location"])
    assert "Unknown aliquots" in page.get_data(as_text=True)


# --- what spans centres: boxes, shipments, counts, messages ---------------------------------


def test_a_paris_box_map_shows_a_limoges_tube_as_taken_and_nothing_more(world, make_user):
    paris = storage.box_map(world["par_store"]["box"], actor=make_user("technician", site="PAR"))
    elsewhere = [w for w in paris.wells if w.state == "other-centre"]
    assert len(elsewhere) == 1
    assert elsewhere[0].barcode is None and elsewhere[0].participant is None
    assert world["lim2"][0] not in {w.barcode for w in paris.wells}
    assert paris.free == 81 - len(world["par"]) - 1
    central = storage.box_map(world["par_store"]["box"], actor=make_user("technician"))
    assert world["lim2"][0] in {w.barcode for w in central.wells}
    assert central.free == paris.free


def test_a_shipment_of_a_centre_carries_only_that_centre_tubes(world, db, make_user):
    paris = shipping.create_shipment(destination_site="BIO", actor=make_user("technician", "PAR"))
    with pytest.raises(DomainError) as refused:
        shipping.add_to_shipment(paris.code, world["lim"][3], actor=make_user("technician"))
    assert refused.value.code == "shipment.other_centre"


def test_the_counts_of_a_centre_bound_user_are_of_their_centre(world, make_user):
    wanted = parse({"visits": ["BL"], "sample_types": ["SER"]})
    counts = {
        site: requests.match_count(wanted, actor=make_user("manager", site)).participants
        for site in (None, "LIM", "PAR")
    }
    assert counts == {None: 3, "LIM": 2, "PAR": 1}
    rows = requests.catalogue(wanted, actor=make_user("manager", "PAR"))
    assert [row.participants for row in rows] == [1]


def test_a_missing_limoges_tube_is_told_to_the_managers_who_may_see_it(world, db):
    for name, site in (("boss", None), ("boss.lim", "LIM"), ("boss.par", "PAR")):
        auth.create_user(name, "manager", PASSWORD, site_code=site, email=f"{name}@chu.example")
    transfer = world["shipments"][0]

    def user(name: str) -> User:
        return db.session.execute(sa.select(User).where(User.username == name)).scalar_one()

    shipping.dispatch(
        transfer, shipping.Dispatch("Courier", "T-1", True, None, ""), actor=user("tech.lim")
    )
    shipping.complete_receipt(transfer, condition="Dry ice left", actor=user("boss"))
    told = db.session.execute(
        sa.select(OutboxMessage.recipients).where(OutboxMessage.event == "receipt.discrepancy")
    ).scalar_one()
    assert "boss@chu.example" in told and "boss.lim@chu.example" in told
    assert "boss.par@chu.example" not in told


# --- (b) every route ------------------------------------------------------------------------

# Routes the walk does not read, and why.
NOT_CHECKED = {
    "static": "the style sheets and scripts: no data",
    "api-docs.openapi_json": "the API's description: no data",
    "auth.login": "the login form: no data",
    "auth_api.health": "answers that the service is up: no data",
    "metrics.metrics": "counts of the whole bank for monitoring, to configured addresses "
    "or a token, never to a user as such (tests/metrics)",
    "auth_api.ready": "answers that the database is up and migrated: its revision, no data",
}
# Every other GET route, by what its address names: the walk fills it with the objects of
# LIM of that kind (and, for containers, the Paris box holding a LIM tube and what holds
# that box). A route added to the application and not listed here fails the walk: say
# what it shows before it is trusted.
ROUTES = {
    "auth.home": None,
    "auth.password": None,
    "auth.users": None,
    "auth.account": "user",
    "auth_api.me": None,
    "samples.scan": None,
    "samples.aliquot": "aliquot",
    "samples.find_participant": None,
    "samples.register": "participant",
    "samples.visit": "visit",
    "samples_api.list_aliquots": None,
    "samples_api.get_aliquot": "aliquot",
    "samples_api.aliquot_custody": "aliquot",
    "study.participants": None,
    "study.participant": "participant",
    "study.new_participant": None,
    "study.sites": None,
    "study.protocol": None,
    "study_api.list_participants": None,
    "study_api.get_participant": "participant",
    "study_api.participant_visits": "participant",
    "study_api.current_protocol": None,
    "study_api.list_sites": None,
    "printing.preview": "aliquot",
    "printing.aliquot_labels": "aliquot",
    "printing.visit_labels": "visit",
    "printing.box_labels": None,
    "printing.label_templates": None,
    "printing.printers": None,
    "printing_api.aliquot_label_preview": "aliquot",
    "printing_api.list_templates": None,
    "printing_api.list_printers": None,
    "storage.overview": None,
    "storage.box": "container",
    "storage.container": "container",
    "storage.allocation": "visit",
    "storage.check_out": None,
    "storage.move": None,
    "storage.return_tube": None,
    "storage.scan_to_store": None,
    "racks.rack_scan": None,
    "inventory.import_page": None,
    "inventory.template_download": None,
    "inventory.preview_page": None,
    "inventory.summary": None,
    "storage_api.box": "container",
    "storage_api.list_containers": None,
    "storage_api.container_contents": "container",
    "storage_api.evacuation_plan": "container",
    "notifications.outbox": None,
    "notifications.deliver_page": None,
    "distribution.catalogue": None,
    "distribution.requests_list": None,
    "distribution.new_request": None,
    "distribution.request_page": "request",
    "distribution.approve_page": "request",
    "distribution.cancel_page": "request",
    "distribution.contact_page": "request",
    "distribution.confirm_contact_page": "request",
    "distribution.pick": "request",
    "distribution.pick_list_pdf": "request",
    "distribution.reject_page": "request",
    "distribution.review": "request",
    "distribution.start_review_page": "request",
    "distribution_api.catalogue": None,
    "distribution_api.list_requests": None,
    "distribution_api.get_request": "request",
    "distribution_api.pick_list": "request",
    "distribution_api.pick_list_pdf": "request",
    "distribution_api.proposal": "request",
    "distribution_api.list_shipments": None,
    "distribution_api.get_shipment": "shipment",
    "distribution_api.manifest": "shipment",
    "distribution_api.manifest_pdf": "shipment",
    "distribution_api.manifest_xlsx": "shipment",
    "distribution_api.receipt": "shipment",
    "distribution_api.withdrawn_aliquots": "participant",
    "shipments.shipments": None,
    "shipments.shipment": "shipment",
    "shipments.check_in_page": "shipment",
    "shipments.rack_page": "shipment",
    "shipments.dispatch_page": "shipment",
    "shipments.pack_page": "shipment",
    "shipments.unpack_page": "shipment",
    "shipments.manifest": "shipment",
    "shipments.receipt_page": "shipment",
    "shipments.receive": "shipment",
    "shipments.store": "shipment",
    "shipments.use_page": "shipment",
    "shipments.found_page": "aliquot",
    "shipments.withdraw_consent_page": "participant",
    "study.leaving_page": "participant",
    "shipments.withdrawn": "participant",
    "assays.runs": None,
    "assays.analytes": None,
    "assays.plate_design": None,
    "assays.export": "export",
    "assays.run": "run",
    "assays.curve": "run",
    "assays.time_course_picture": "participant",
    "assays_api.list_analytes": None,
    "assays_api.list_runs": None,
    "assays_api.get_run": "run",
    "assays_api.aliquot_results": "aliquot",
    "assays_api.participant_results": "participant",
    "assays_api.export_csv": None,
    "assays_api.export_xlsx": None,
    "exports.sdtm_zip": None,
    "monitoring.completeness_page": None,
    "monitoring.completeness_download": None,
    "monitoring.completeness_chart_svg": None,
    "monitoring_api.collection_completeness": None,
    "outcome.summary": None,
    "outcome.waterfall_svg": None,
    "outcome.waterfall_png": None,
    "outcome_api.summary": None,
    "fhir.metadata": None,
    "fhir.read_specimen": "aliquot",
    "fhir.search_specimens": None,
    "fhir.search_observations": None,
}
FORMATS = {"run": ("png", "svg"), "shipment": ("pdf", "xlsx"), "export": ("csv", "xlsx")}


def _parameter_sets(rule, world) -> list[dict]:
    """The parameters a route is walked with, from what its address names."""
    kind = ROUTES[rule.endpoint]
    lim_store, par_store = world["lim_store"], world["par_store"]
    values = {
        None: [{}],
        "aliquot": [{"barcode": world["lim"][3]}],
        "participant": [{"code": code} for code in ("LIM-071", "LIM-072")],
        "visit": [{"code": code, "visit_code": "BL"} for code in ("LIM-071", "LIM-072")],
        "container": [
            {"barcode": code} for code in [*lim_store.values(), par_store["box"], par_store["room"]]
        ],
        "run": [{"code": code} for code in world["runs"].values()],
        "shipment": [{"code": code} for code in world["shipments"]],
        "request": [{"request_id": n} for n in world["requests"].values()],
        "export": [{}],
        "user": [{"username": "tech.lim"}],
    }[kind]
    if "fmt" in rule.arguments:
        values = [{**v, "fmt": fmt} for v in values for fmt in FORMATS[kind]]
    return values


def _query(endpoint: str, world) -> str:
    """A query string for the pages that read a code from it."""
    lim, box = world["lim"][3], world["lim_store"]["box"]
    return {
        "samples.scan": f"code={lim}",
        "storage.check_out": f"code={lim}",
        "storage.return_tube": f"code={lim}",
        "storage.scan_to_store": f"box={box}",
        "racks.rack_scan": f"box={box}",
        "storage.move": f"container={box}",
        "storage.box": f"find={lim}",
        "storage.container": "plan=1",
        "study.participants": "site=LIM",
        "monitoring.completeness_page": "site=LIM",
        "monitoring.completeness_download": "site=LIM",
        "monitoring_api.collection_completeness": "site=LIM",
        "fhir.search_specimens": "subject=LIM-071",
        "fhir.search_observations": f"specimen={lim}",
    }.get(endpoint, "")


# A URL that names one of these is asking for an object of LIM: it is not found (or, for
# a scanned tube, answered only with "registered at another centre").
def _names_lim_object(params: dict, world) -> bool:
    lim_only = {
        "LIM-071",
        "LIM-072",
        *world["lim_barcodes"],
        *world["lim_store"].values(),
        *world["shipments"],
        world["runs"]["lim_only"],
    }
    return any(str(value) in lim_only for value in params.values())


def _get_rules(app):
    rules = sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule)
    return [rule for rule in rules if "GET" in rule.methods]


def test_every_get_route_is_walked_or_said_why_not(app):
    endpoints = {rule.endpoint for rule in _get_rules(app)}
    unknown = endpoints - set(ROUTES) - set(NOT_CHECKED)
    assert not unknown, f"say what these routes name (ROUTES) or why they are not walked: {unknown}"
    assert not (set(ROUTES) | set(NOT_CHECKED)) - endpoints, "routes that no longer exist"
    assert not set(ROUTES) & set(NOT_CHECKED)


def test_no_route_shows_a_paris_user_anything_of_limoges(app, world, login_as, api_as):
    roles = [Role.TECHNICIAN, Role.RESEARCHER, Role.MANAGER, Role.ADMIN]
    pages = {role: login_as(role.value, site="PAR") for role in roles}
    api = {role: api_as(role.value, site="PAR") for role in roles}
    markers = _markers(world)
    wrong, walked = [], 0
    for rule in _get_rules(app):
        if rule.endpoint in NOT_CHECKED:
            continue
        assert rule.endpoint in ROUTES, f"{rule.rule}: say what it names in ROUTES"
        permission = app.view_functions[rule.endpoint].required_permission
        for params in _parameter_sets(rule, world):
            url = rule.build(params, append_unknown=False)[1]
            query = _query(rule.endpoint, world)
            url = f"{url}?{query}" if query else url
            is_api = url.startswith("/api/")
            for role in roles:
                if permission is not None and not role_may(role.value, permission):
                    continue
                response = (api if is_api else pages)[role].get(url)
                walked += 1
                status = response.status_code
                if status >= 500:
                    wrong.append(f"{url} as {role.value}: {status}")
                found = leaks(response, markers, url)
                if found:
                    wrong.append(f"{url} as {role.value} ({status}) shows {found}")
                if _names_lim_object(params, world) and status == 200:
                    wrong.append(f"{url} as {role.value}: 200 for an object of LIM")
    assert walked > 300
    assert not wrong, "\n".join(wrong)
