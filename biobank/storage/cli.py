"""flask storage …"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from biobank.storage import rack_import
from biobank.transaction import unit_of_work

storage_cli = AppGroup("storage", help="Freezers, boxes, rack scans.")

CATEGORY_NAMES = {
    "matched": "matched",
    "moved": "moved",
    "missing": "missing",
    "unexpected": "unexpected",
    "unknown": "unknown",
    "no_read": "no read",
    "errors": "errors",
}


@storage_cli.command("rack-scan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--box", "box", metavar="BARCODE", help="The box, when the file names no rack.")
@click.option(
    "--apply", "apply_", is_flag=True, help="Record the moved tubes where they were read."
)
@click.option("--json", "as_json", is_flag=True, help="Print the preview as JSON.")
@unit_of_work
def rack_scan(file: Path, box: str | None, apply_: bool, as_json: bool):
    """Compare the rack-scanner FILE with the database (the rack id in the file is the box
    barcode); with --apply, record every moved tube in one transaction.

    Exit 0 when the preview (or the apply) succeeded, 1 naming the problem when the file
    cannot be read, the box is unknown, or (with --apply) the scan has errors.
    """
    data = file.read_bytes()
    if apply_:
        preview = rack_import.apply_rack(data, box=box, actor=None)
    else:
        preview = rack_import.preview_rack(data, box=box, actor=None)
    if as_json:
        click.echo(json.dumps(preview.as_dict(), ensure_ascii=False, indent=2))
        return
    counts = ", ".join(f"{n} {CATEGORY_NAMES[name]}" for name, n in preview.counts.items())
    click.echo(f"rack {preview.rack} ({preview.location}): {counts}")
    for name in rack_import.CATEGORIES:
        for entry in getattr(preview, name):
            click.echo(f"  {CATEGORY_NAMES[name]:10} {_describe(entry.as_dict())}")
    if apply_:
        click.echo(
            f"applied: {len(preview.to_apply)} tube(s) recorded where they were read; "
            f"{len(preview.missing)} missing and {len(preview.blocked)} blocked left as they are"
        )


def _describe(entry: dict) -> str:
    first = f"{entry.get('position') or '-':4} {entry.get('barcode') or '-'}"
    rest = [
        f"{key}={value}"
        for key, value in entry.items()
        if key not in ("position", "barcode") and value is not None
    ]
    return " ".join([first, *rest])
