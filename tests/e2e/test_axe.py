"""Every page of the application audited by axe-core against WCAG 2.2 A and AA, in English
and French, at desktop (1366 × 768) and tablet (768 × 1024) size, as the administrator
(the role that sees every page and every button), plus the refused login, registration
and request forms, the error page and the SDTM export's define document. Any violation
fails, naming the page, the rule, its impact, the elements and axe's help; the accepted
exceptions are in ``ACCEPTED``, each with its reason.

axe-core is the copy shipped inside the pinned axe-playwright-python wheel (nothing is
fetched from a CDN). Playwright evaluates it into each page, which the
Content-Security-Policy does not govern (a ``<script>`` tag would be refused), so the
pages are audited under their real policy.

Which pages: every GET endpoint of the application's url_map is either audited here, with
its parameters taken from a seeded bank (participants, visits, aliquots, freezer, rack,
box, requests under review and approved, shipments preparing, dispatched and received, a
tube gone missing, accepted and pending assay runs, an inventory import, a printer, the
outbox), or listed in ``NOT_PAGES`` with the reason; a new endpoint in neither fails.

Only on SQLite: the pages render the same markup on PostgreSQL, and CI runs both suites
side by side on two cores, where a second audit would add a minute or two for nothing.
The audit runs in `make test` and in `.ci/run`'s SQLite suite; CI=true never skips it.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from flask import url_for

from biobank.assays import pipeline
from biobank.assays import services as assays
from biobank.assays.example import make_plate
from biobank.auth import services as auth
from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.shipping import Dispatch
from biobank.inventory import kept
from biobank.inventory import services as inventory
from biobank.notifications import services as notifications
from biobank.printing import services as printing
from biobank.storage import services as storage
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request, stock
from tests.e2e.conftest import TIMEOUT_MS
from tests.inventory import aliquot, tube, xlsx
from tests.inventory.conftest import lim_freezer

pytestmark = [pytest.mark.e2e, pytest.mark.markup]

WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
EVERY_RULE = {"runOnly": {"type": "tag", "values": WCAG_22_AA}, "resultTypes": ["violations"]}
# Rules whose answer depends on the layout run at both sizes. The others read the markup
# and the styles, which no media query of app.css changes with the width (print only:
# checked below), so they run once, at the size the page was loaded in.
LAYOUT_RULES = ["color-contrast", "target-size", "scrollable-region-focusable"]
LAYOUT_ONLY = {"runOnly": {"type": "rule", "values": LAYOUT_RULES}, "resultTypes": ["violations"]}
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "tablet": {"width": 768, "height": 1024}}
LOCALES = {"en": "en-GB", "fr": "fr-FR"}
ADMIN = "axe.admin"
LOGIN_BUTTON = "form button[type=submit].primary"
STYLESHEET = Path(__file__).resolve().parents[2] / "biobank" / "static" / "app.css"
PICTURES = re.compile(r"\.(png|svg)(\?|$)")

# (rule, CSS selector axe names) -> why the violation is accepted. Keep it short and
# specific: one element, never a whole rule.
ACCEPTED: dict[tuple[str, str], str] = {}

# GET endpoints that are not pages, each with the reason.
NOT_PAGES: dict[str, str] = {
    "static": "static files",
    "metrics.metrics": "Prometheus text for the scraper",
    "api-docs.openapi_json": "JSON API description",
    "printing.preview": "label picture (PNG), shown inside the label pages",
    "assays.curve": "standard curve picture (PNG/SVG), shown inside the run page",
    "assays.time_course_picture": "results picture (PNG), shown inside the participant page",
    "assays.export": "file download (CSV/XLSX)",
    "exports.sdtm_zip": "file download (ZIP); its define.html is audited below",
    "inventory.template_download": "file download (XLSX)",
    "monitoring.completeness_download": "file download (XLSX)",
    "monitoring.completeness_chart_svg": "chart picture (SVG), shown inside its page",
    "outcome.waterfall_png": "plot picture (PNG), shown inside the outcome page",
    "outcome.waterfall_svg": "plot picture (SVG), shown inside the outcome page",
    "shipments.manifest": "file download (PDF/XLSX)",
    "distribution.pick_list_pdf": "file download (PDF)",
    # A form's address opened by a GET (an expired login, an old tab) answers with a 303
    # to the page that holds the form, which is audited under its own endpoint.
    **dict.fromkeys(
        [
            "distribution.cancel_page",
            "distribution.contact_page",
            "distribution.confirm_contact_page",
            "distribution.start_review_page",
            "distribution.approve_page",
            "distribution.reject_page",
            "shipments.pack_page",
            "shipments.unpack_page",
            "shipments.dispatch_page",
            "shipments.check_in_page",
            "shipments.rack_page",
            "shipments.receipt_page",
            "shipments.use_page",
            "shipments.found_page",
            "shipments.withdraw_consent_page",
            "study.leaving_page",
            "notifications.deliver_page",
        ],
        "a form's address: redirects (303) to the page holding the form",
    ),
}
NOT_PAGE_PREFIXES = {
    "_api.": "JSON API (no HTML)",
    "fhir.": "FHIR R4 JSON API (no HTML)",
}


# Codes the seed gives: a participant with stored visits, one whose baseline waits to be
# stored, one who withdrew consent; the central freezer, a rack and a box in it.
PARTICIPANT, WAITING, WITHDRAWN = "LIM-001", "LIM-004", "PAR-001"
FREEZER, RACK, BOX, LIM_BOX = "FR-0001", "RK-0001", "BX-0001", "BX-0002"


@dataclass(frozen=True)
class World:
    """What the seed made that has a generated code or id."""

    barcode: str
    missing: str
    run: str
    pending_run: str
    request_review: int
    request_approved: int
    shipment_preparing: str
    shipment_dispatched: str
    shipment_received: str
    import_id: int
    import_sha: str
    problems_sha: str


def build_world(seed) -> World:
    """A bank with something on every page, built through the services."""
    with seed() as db:
        factories.protocol()
        factories.sites()
        admin = factories.user("admin", name=ADMIN, password=PASSWORD)
        manager = auth.create_user(
            "axe.manager", "manager", PASSWORD, email="manager@biobank.example"
        )
        researcher = factories.user("researcher", name="axe.researcher", password=PASSWORD)
        technician = factories.user("technician", name="axe.technician", password=PASSWORD)
        factories.freezer({})
        storage.create_container("rack", "Rack A", parent="SH-0001", barcode=RACK, actor=None)
        stored = stock(db)
        # A visit registered and not stored yet: allocation, labels and scan-to-store.
        factories.participant("LIM", code=WAITING)
        factories.visit(WAITING, "BL")
        # A participant who withdrew consent, with tubes to destroy.
        factories.participant("PAR", code=WITHDRAWN)
        factories.visit(WITHDRAWN, "BL")
        shipping.withdraw_consent(WITHDRAWN, date(2026, 2, 1), actor=manager)

        # Requests: one under review; three approved, one shipment each at a later stage.
        under_review = serum_request(researcher, title="Under review")
        requests.start_review(under_review.id, actor=manager)
        shipments = []
        for visits in ("BL", "M2", "BL"):
            request = serum_request(researcher, title=f"Serum {visits}", visits=visits)
            requests.start_review(request.id, actor=manager)
            chosen = [
                c.barcode
                for c in requests.propose(
                    request.id, per_participant_visit=1, actor=manager
                ).selection.chosen
            ]
            requests.approve(request.id, chosen, per_participant_visit=1, actor=manager)
            shipment = shipping.create_shipment(request_id=request.id, actor=technician)
            for code in chosen:
                shipping.add_to_shipment(shipment.code, code, actor=technician)
            shipments.append((request.id, shipment.code, chosen))
        dispatch = Dispatch("World Courier", "WC-1", True, 5.0, "TL-7")
        (_, received, sent), (_, dispatched, travelling) = shipments[0], shipments[1]
        for code in (received, dispatched):
            shipping.dispatch(code, dispatch, actor=technician)
        shipping.check_in(received, sent[0], actor=technician)
        shipping.check_in(received, sent[1], damaged=True, note="cracked", actor=technician)
        shipping.complete_receipt(received, condition="frozen", actor=technician)
        shipping.check_in(dispatched, travelling[0], actor=technician)
        preparing = shipments[2][1]
        approved_id = shipments[2][0]

        # Assays: an accepted VEGF plate and a plate waiting for acceptance.
        serum = [stored[(p, "BL", "SER")][0] for p in ("LIM-001", "LIM-002", "LIM-003")]
        options = pipeline.Options(read=450, reference=540)
        plate = make_plate(dict(zip(serum, (900.0, 600.0, 10.0), strict=True)))
        run = assays.preview_plate(
            plate.reader, "vegf.xlsx", plate.plate_map, "VEGF", options, actor=None
        ).run
        assays.accept_run(run.code, actor=None)
        plate = make_plate({stored[("LIM-002", "M2", "SER")][0]: 450.0})
        pending = assays.preview_plate(
            plate.reader, "vegf-m2.xlsx", plate.plate_map, "VEGF", options, actor=None
        ).run

        # Inventory: one import applied, one file with problems waiting in its preview.
        lim_freezer(number=2)
        applied = inventory.apply(
            xlsx(tube(3, box=LIM_BOX)), "inventory.xlsx", actor=None, site_code="LIM"
        )
        wrong = xlsx([aliquot(4, box=LIM_BOX), aliquot(5, volume_ul=900, box=LIM_BOX)])

        printing.add_printer("Bench printer", "127.0.0.1", location="Room 114", actor=admin)
        storage.record_excursion(
            FREEZER,
            started_at=datetime.now(UTC) - timedelta(hours=3),
            ended_at=datetime.now(UTC) - timedelta(hours=2),
            highest_c=-60.0,
            note="door left open",
            actor=admin,
        )
        notifications.notify(
            "request.submitted", ["manager@biobank.example", None], "A request", "Body"
        )
        db.session.flush()
        return World(
            barcode=stored[(PARTICIPANT, "BL", "SER")][1],
            missing=sent[2],
            run=run.code,
            pending_run=pending.code,
            request_review=under_review.id,
            request_approved=approved_id,
            shipment_preparing=preparing,
            shipment_dispatched=dispatched,
            shipment_received=received,
            import_id=applied.applied.id,
            import_sha=applied.applied.sha256,
            problems_sha=kept.keep(wrong, "inventaire.xlsx", admin.id),
        )


def pages(w: World) -> list[tuple[str, dict]]:
    """(endpoint, arguments) of every page state audited; query arguments included."""
    return [
        ("auth.home", {}),
        ("auth.password", {}),
        ("auth.users", {}),
        ("auth.account", {"username": "axe.technician"}),
        ("study.sites", {}),
        ("study.protocol", {}),
        ("study.participants", {}),
        ("study.new_participant", {}),
        ("study.participant", {"code": PARTICIPANT}),
        ("study.participant", {"code": WITHDRAWN}),
        ("samples.find_participant", {}),
        ("samples.register", {"code": WAITING}),
        ("samples.visit", {"code": PARTICIPANT, "visit_code": "BL"}),
        ("samples.aliquot", {"barcode": w.barcode}),
        ("samples.aliquot", {"barcode": w.missing}),
        ("samples.scan", {}),
        ("samples.scan", {"code": w.barcode}),
        ("samples.scan", {"code": "NO-SUCH-TUBE"}),
        ("printing.visit_labels", {"code": PARTICIPANT, "visit_code": "BL"}),
        ("printing.aliquot_labels", {"barcode": w.barcode}),
        ("printing.box_labels", {}),
        ("printing.printers", {}),
        ("printing.label_templates", {}),
        ("storage.overview", {}),
        ("storage.overview", {"excursions": 7}),
        ("storage.container", {"barcode": FREEZER}),
        ("storage.container", {"barcode": RACK}),
        ("storage.box", {"barcode": BOX}),
        ("storage.box", {"barcode": BOX, "find": w.barcode}),
        ("storage.scan_to_store", {}),
        ("storage.scan_to_store", {"box": LIM_BOX}),
        ("storage.allocation", {"code": WAITING, "visit_code": "BL"}),
        ("storage.move", {}),
        ("storage.check_out", {}),
        ("storage.return_tube", {}),
        ("racks.rack_scan", {}),
        ("distribution.catalogue", {}),
        ("distribution.requests_list", {}),
        ("distribution.new_request", {}),
        ("distribution.request_page", {"request_id": w.request_review}),
        ("distribution.request_page", {"request_id": w.request_approved}),
        ("distribution.review", {"request_id": w.request_review}),
        ("distribution.review", {"request_id": w.request_approved}),
        ("distribution.pick", {"request_id": w.request_approved}),
        ("shipments.shipments", {}),
        ("shipments.shipment", {"code": w.shipment_preparing}),
        ("shipments.shipment", {"code": w.shipment_received}),
        ("shipments.receive", {"code": w.shipment_dispatched}),
        ("shipments.receive", {"code": w.shipment_received}),
        ("shipments.store", {"code": w.shipment_received}),
        ("shipments.withdrawn", {"code": WITHDRAWN}),
        ("assays.runs", {}),
        ("assays.run", {"code": w.run}),
        ("assays.run", {"code": w.pending_run}),
        ("assays.analytes", {}),
        ("assays.plate_design", {}),
        ("inventory.import_page", {}),
        ("inventory.preview_page", {"file": w.problems_sha, "site": "LIM"}),
        ("inventory.preview_page", {"file": w.import_sha}),
        ("inventory.summary", {"id": w.import_id}),
        ("notifications.outbox", {}),
        ("monitoring.completeness_page", {}),
        ("outcome.summary", {}),
    ]


def not_a_page(endpoint: str) -> bool:
    return endpoint in NOT_PAGES or any(p in endpoint for p in NOT_PAGE_PREFIXES)


@pytest.fixture
def seeded(live_app, seed, tmp_path):
    live_app.config["INVENTORY_UPLOAD_FOLDER"] = str(tmp_path / "kept")
    return build_world(seed)


class Audit:
    """axe in one browser context per language, gathering what fails into ``found``:
    {(page, rule, impact, element, help): [language (and size), …]}.

    Each page is audited at the size it loaded in, then resized to the other size for
    the layout rules (the next page loads at that size): one navigation per page and
    language instead of two. axe is an init script of the context: Playwright evaluates
    it into every document, outside the page's Content-Security-Policy, which stays in
    force."""

    def __init__(self, browser, live_server: str, language: str, found: dict):
        self.language = language
        self.found = found
        self.context = browser.new_context(
            base_url=live_server,
            viewport=VIEWPORTS["desktop"],
            locale=LOCALES[language],
            timezone_id="Europe/Paris",
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.add_init_script(AXE_SCRIPT)
        # Pictures are drawn by the server (curves, plots, label previews) and axe does
        # not read them: not fetched, to keep the audit fast.
        self.context.route(PICTURES, lambda route: route.abort())
        self.page = self.context.new_page()
        self.viewports = list(VIEWPORTS)

    def url(self, url: str) -> None:
        status = self.page.goto(url).status
        self.here(url, expected=urlsplit(url).path, status=status)

    def refused(self, button: str, where: str) -> None:
        """Send the form of ``button``, to be refused, and audit the page it comes back to."""
        form_page = urlsplit(self.page.url).path
        with self.page.expect_navigation() as answer:
            self.page.click(button)
        self.here(where, expected=form_page, status=answer.value.status)

    def here(self, where: str, *, expected: str, status: int) -> None:
        """Audit the page as it is now, naming it ``where``, if it is at ``expected``."""
        landed = urlsplit(self.page.url).path
        if status >= 500 or landed != expected:
            # Not the page meant: a broken page, or a seeded state that no longer holds.
            answer = (where, "answer", str(status), landed, "server error or not this page")
            self.found.setdefault(answer, []).append(self.language)
            return
        loaded, other = self.viewports
        self.check(where, loaded, EVERY_RULE)
        self.page.set_viewport_size(VIEWPORTS[other])
        self.check(where, other, LAYOUT_ONLY)
        self.viewports.reverse()  # the next page loads at this size

    def check(self, where: str, viewport: str, options: dict) -> None:
        result = self.page.evaluate("options => axe.run(document, options)", options)
        for violation in result["violations"]:
            rule = violation["id"]
            seen = f"{self.language} {viewport}" if rule in LAYOUT_RULES else self.language
            for node in violation["nodes"]:
                target = " ".join(str(t) for t in node["target"])
                if (rule, target) in ACCEPTED:
                    continue
                impact = node.get("impact") or violation["impact"]
                key = (where, rule, impact, target, violation["help"])
                self.found.setdefault(key, []).append(seen)


def report(found: dict) -> str:
    lines = [
        f"{where}: {rule} ({impact}) at {target} — {help} [{', '.join(seen)}]"
        for (where, rule, impact, target, help), seen in found.items()
    ]
    return f"{len(lines)} accessibility violations:\n" + "\n".join(lines)


def audit_define(audit: Audit) -> None:
    """The define document of the SDTM export, opened from the downloaded archive."""
    archive = audit.page.request.get("/exports/sdtm.zip").body()
    define = zipfile.ZipFile(io.BytesIO(archive)).read("define.html")
    audit.page.route(
        "**/define.html",
        lambda route: route.fulfill(body=define, content_type="text/html; charset=utf-8"),
    )
    audit.url("/exports/define.html")


def test_every_page_passes_axe_in_both_languages_and_viewports(
    browser, live_app, live_server, seeded
):
    with live_app.test_request_context():
        urls = [url_for(endpoint, **values) for endpoint, values in pages(seeded)]
    audited = {"auth.login"} | {endpoint for endpoint, _ in pages(seeded)}
    unlisted = [
        rule.endpoint
        for rule in live_app.url_map.iter_rules()
        if "GET" in rule.methods and not not_a_page(rule.endpoint) and rule.endpoint not in audited
    ]
    assert not unlisted, f"GET endpoints neither audited nor listed in NOT_PAGES: {unlisted}"
    assert set(NOT_PAGES) <= set(live_app.view_functions), "NOT_PAGES names a removed endpoint"

    media = re.findall(r"@media\s+([^{]*)", STYLESHEET.read_text(encoding="utf-8"))
    assert all(m.strip() == "print" for m in media), "a media query for screens: see LAYOUT_RULES"

    started = time.monotonic()
    found: dict = {}
    for language in LOCALES:
        audit = Audit(browser, live_server, language, found)
        page = audit.page
        audit.url("/login")
        page.fill("#username", "nobody")
        page.fill("#password", "not the password")
        audit.refused(LOGIN_BUTTON, "/login, refused")
        page.fill("#username", ADMIN)
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click(LOGIN_BUTTON)
        audit.url("/no-such-page")
        for url in urls:
            audit.url(url)

        page.goto(f"/participants/{WAITING}/register")
        page.select_option("#visit", index=1)
        audit.refused("form.registration button.primary[type=submit]", "registration, refused")
        page.goto("/requests/new")
        audit.refused("#request-form button.primary[type=submit]", "request form, refused")

        if language == "en":  # a file read offline, in English whatever the language
            audit_define(audit)
        audit.context.close()
    print(f"axe: {len(urls) + 5} page states × 2 languages in {time.monotonic() - started:.0f} s")
    assert not found, report(found)
