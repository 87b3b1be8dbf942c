"""`flask assay ...`: import plate-reader files and result sheets, list analytes.

Without ``--accept`` an import is a dry run that writes nothing; with it, the run is
stored and accepted in one transaction (by the command line, "system" in the records).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from biobank.assays import pipeline, services
from biobank.errors import DomainError
from biobank.transaction import unit_of_work

assay_cli = AppGroup("assay", help="Assay runs and results.")


def _print(preview: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(preview, indent=2, ensure_ascii=False, default=str))
        return
    for key in ("fit", "qc"):
        if key in preview:
            click.echo(f"{key}: {json.dumps(preview[key], default=str)}")
    for sample in preview.get("samples", []):
        if sample["flag"]:
            value = f"{sample['flag']} {sample['unit']}"
        elif sample["concentration"] is not None:
            value = f"{sample['concentration']:.4g} {sample['unit']}"
        else:  # a sample without a result is shown with its reason, never dropped
            value = f"no result ({sample.get('reason') or 'no reading'})"
        click.echo(f"{sample['barcode']:12} {value}")
    for row in preview.get("rows", []):
        click.echo(f"row {row['row']:>5} {row['barcode']:12} {row['analyte']:10} {row['value']}")
    for problem in preview.get("problems", []):
        click.echo(f"problem: {problem}")


_REASSAY_REASON = click.option(
    "--reassay-reason",
    default="",
    help="Why this run measures again what an earlier run measured (a diluted repeat, a "
    "failed control): its values then supersede the earlier ones.",
)
_CONFIRM = click.option(
    "--confirm",
    is_flag=True,
    help="With --accept: accept although the run measures again visits already measured "
    "(without it, such a run is refused with the list of those visits).",
)
_CHOOSE = click.option(
    "--choose",
    "choices",
    multiple=True,
    metavar="VISIT=RUN",
    help="With --confirm: the run whose value is kept for a visit the rule cannot decide, "
    "the visit as the refusal names it (LIM-001/M2/VEGF/SER=A00012). Repeatable.",
)


def _accept(run, confirm: bool, choices: tuple[str, ...]) -> None:
    """Accept the run; a refusal for visits measured again lists them first."""
    chosen = {}
    for choice in choices:
        visit, equals, run_code = choice.partition("=")
        if not equals:
            raise click.BadParameter(f"{choice!r} is not VISIT=RUN", param_hint="--choose")
        chosen[visit.strip()] = run_code.strip()
    try:
        services.accept_run(run.id, confirm=confirm, choices=chosen, actor=None)
    except DomainError as err:
        for item in err.fields.get("remeasured", ()):
            earlier = item["earlier"]
            before = f"{earlier['run']} {earlier['shown']}" if earlier else "-"
            now = ", ".join(c["shown"] for c in item["this_run"])
            kept = item["keeps"] or "choose (--choose)"
            click.echo(f"measured again: {item['key']}: {before} -> {now}; keeps {kept}", err=True)
        raise


@assay_cli.command("import-plate")
@click.argument("reader_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--plate-map",
    "plate_map",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--analyte", required=True, help="Analyte code, e.g. VEGF.")
@click.option("--read", type=int, help="Wavelength (450) or block number of the read.")
@click.option("--reference", type=int, help="Wavelength (540, 570) or block of the correction.")
@click.option("--model", type=click.Choice(["4PL", "5PL"]), default="4PL")
@click.option("--weighting", type=click.Choice(["1/y2", "none"]), default="1/y2")
@click.option(
    "--long-list",
    is_flag=True,
    help="Read the long list by the columns named below (without it a list with one row "
    "per well is found by itself, each column of readings being a read).",
)
@click.option("--well-column", default="Well", show_default=True)
@click.option("--sample-column", default="Sample", show_default=True)
@click.option("--value-column", default="Value", show_default=True)
@click.option("--instrument", default="")
@click.option("--kit-lot", default="")
@click.option(
    "--measured-on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day the plate was read (default: the date the reader file gives).",
)
@_REASSAY_REASON
@click.option("--accept", is_flag=True, help="Store and accept the run.")
@_CONFIRM
@_CHOOSE
@click.option("--json", "as_json", is_flag=True, help="Print the preview as JSON.")
@unit_of_work
def import_plate(
    reader_file,
    plate_map,
    analyte,
    read,
    reference,
    model,
    weighting,
    long_list,
    well_column,
    sample_column,
    value_column,
    instrument,
    kit_lot,
    measured_on,
    reassay_reason,
    accept,
    confirm,
    choices,
    as_json,
):
    """Read, fit and check a plate; print its preview."""
    preview = services.preview_plate(
        reader_file.read_bytes(),
        reader_file.name,
        plate_map.read_bytes(),
        analyte,
        pipeline.Options(
            read=read,
            reference=reference,
            model=model,
            weighting=weighting,
            long_list=long_list,
            well_column=well_column,
            sample_column=sample_column,
            value_column=value_column,
        ),
        instrument=instrument,
        kit_lot=kit_lot,
        measured_on=measured_on.date() if measured_on else None,
        reassay_reason=reassay_reason,
        keep=accept,
        actor=None,
    )
    if accept:
        _accept(preview.run, confirm, choices)
        preview.data["status"] = "accepted"
    _print(preview.data, as_json)


@assay_cli.command("import-results")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_REASSAY_REASON
@click.option("--accept", is_flag=True, help="Store and accept the results.")
@_CONFIRM
@_CHOOSE
@click.option("--json", "as_json", is_flag=True, help="Print the preview as JSON.")
@unit_of_work
def import_results(file, reassay_reason, accept, confirm, choices, as_json):
    """Check a row-per-sample result sheet; print its preview."""
    preview = services.preview_results(
        file.read_bytes(), file.name, reassay_reason=reassay_reason, keep=accept, actor=None
    )
    if accept:
        _accept(preview.run, confirm, choices)
        preview.data["status"] = "accepted"
    _print(preview.data, as_json)


@assay_cli.command("analytes")
@unit_of_work
def analytes():
    """The analytes known to the bank (the defaults are added on first use)."""
    services.ensure_default_analytes()
    for analyte in services.list_analytes():
        click.echo(f"{analyte.code:12} {analyte.kind:12} {analyte.unit:8} {analyte.name}")


@assay_cli.command("analyte-add")
@click.argument("code")
@click.argument("name")
@click.option("--kind", type=click.Choice(["numeric", "qualitative"]), default="numeric")
@click.option("--unit", default="", help="Canonical unit of a numeric analyte (pg/mL, g/L…).")
@click.option("--value", "values", multiple=True, help="A value of a qualitative analyte.")
@click.option("--alias", "aliases", multiple=True, help="A name laboratories use for it.")
@unit_of_work
def analyte_add(code, name, kind, unit, values, aliases):
    """Declare an analyte (a new marker) that results may be given for."""
    services.ensure_default_analytes()
    analyte = services.declare_analyte(code, name, kind, unit, values, aliases, actor=None)
    click.echo(f"analyte {analyte.code} declared ({f'{analyte.kind} {analyte.unit}'.rstrip()})")
