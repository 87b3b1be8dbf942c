"""Pages: collection completeness per centre, participant and visit; its spreadsheet and
its bar chart, with the same filters."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.errors import DomainError
from biobank.monitoring import completeness_grid
from biobank.monitoring.completeness import STATUS_WORDS, STATUSES, completeness
from biobank.monitoring.completeness_chart import completeness_chart
from biobank.monitoring.completeness_sheet import completeness_xlsx
from biobank.monitoring.forms import CompletenessFilters
from biobank.sites import services as site_services
from biobank.study import services as study
from biobank.web import file_response, flash_fields_to_correct, show_error

bp = Blueprint("monitoring", __name__, template_folder="templates")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _filters() -> CompletenessFilters:
    """The filters of the address, offered the centres the user may choose from."""
    form = CompletenessFilters(request.args)
    sites = [s for s in site_services.list_sites() if not s.is_central]
    if current_user.site_id is not None:
        sites = [s for s in sites if s.id == current_user.site_id]
    form.offer(sites, study.current_protocol().arms)
    return form


def _valid_filters():
    """The filters and the answer they ask for, or a redirect to the page, which shows
    what is wrong with them (a download cannot)."""
    form = _filters()
    if not form.validate():
        return form, None
    try:
        return form, completeness(actor=current_user, **form.criteria())
    except DomainError:
        return form, None


@bp.route("/study/completeness")
@requires(Permission.VIEW_SAMPLES)
def completeness_page():
    """Which tubes the study should hold by now, which are missing, at which centre."""
    form = _filters()
    result = None
    if not form.validate():
        flash_fields_to_correct(len(form.errors))
    else:
        try:
            result = completeness(actor=current_user, **form.criteria())
        except DomainError as err:
            show_error(form, err)
    grids = []
    if result is not None:
        names = {s.code: s.name for s in site_services.list_sites()}
        grids = completeness_grid.grids(result, names, form.page.data or 1)
    return render_template(
        "monitoring/completeness.html",
        form=form,
        result=result,
        grids=grids,
        page=form.page.data or 1,
        pages=completeness_grid.pages_needed(grids),
        args=form.shown(),
        statuses=STATUSES,
        words=STATUS_WORDS,
        symbols=completeness_grid.SYMBOLS,
        tooltip=completeness_grid.tooltip,
    )


@bp.route("/study/completeness.xlsx")
@requires(Permission.VIEW_SAMPLES)
def completeness_download():
    """Every item of the page's filters, one row each."""
    form, result = _valid_filters()
    if result is None:
        return redirect(url_for("monitoring.completeness_page", **request.args), 303)
    content = completeness_xlsx(result, _filters_in_words(form))
    return file_response(content, XLSX, f"completeness-{result.as_of.isoformat()}.xlsx")


@bp.route("/study/completeness/chart.svg")
@requires(Permission.VIEW_SAMPLES)
def completeness_chart_svg():
    """Tubes collected and missing per visit and centre, as a picture for the page."""
    _form, result = _valid_filters()
    if result is None:
        return redirect(url_for("monitoring.completeness_page", **request.args), 303)
    return file_response(
        completeness_chart(result),
        "image/svg+xml",
        f"completeness-{result.as_of.isoformat()}.svg",
        inline=True,
    )


def _filters_in_words(form: CompletenessFilters) -> dict[str, str]:
    everything = _("all")
    return {
        _("Centre"): form.site.data or everything,
        _("Arm"): form.arm.data or everything,
        _("Status"): str(STATUS_WORDS[form.status.data]) if form.status.data else everything,
    }
