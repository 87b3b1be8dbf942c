"""One reportable result per participant's visit, analyte and sample type; the others
superseded, with the run that superseded them and why. A run's re-assay reason and the
day its plate was read; an analyte's significant digits.

``assay_run`` and ``analyte`` get plain columns in place (``recreate="never"``: rows of
other tables point to them, and a copy fails on a database in use, as foreign keys cannot
be switched off inside the migration's transaction). ``assay_result``, which no table
points to, is copied by batch mode on SQLite to take its new foreign key and check.

The results already accepted are settled by the rule of biobank/assays/reportable.py
(written out here: a migration never imports application code that may change later),
applied in the order the runs were accepted. No run was imported as a re-assay before
this revision, so a dilution repeat is the only requested re-assay; then a value within
the calibrated range beats a flagged one, and a flagged one beats no result. Where the
rule cannot decide (two values both within the range), no manager was asked: the later
result stays reportable, reason "latest", as the pages and responses used it until now.

Revision ID: e7a4c2d9b5f1
Revises: d4b2f1a6c8e3
Create Date: 2026-12-07 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e7a4c2d9b5f1"
down_revision = "d4b2f1a6c8e3"
branch_labels = None
depends_on = None

REASONS = "'', 'requested', 'dilution', 'in_range', 'latest', 'chosen'"
FK = "fk_assay_result_superseded_by_run_id_assay_run"
CHECK = "ck_assay_result_superseded_reason_valid"
# Analytes whose significant digits differ from the default 4 (analytes.toml).
DIGITS = {"M_SPIKE": 3}


def upgrade():
    with op.batch_alter_table("analyte", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column(
                "significant_digits", sa.Integer(), server_default=sa.text("4"), nullable=False
            )
        )
    with op.batch_alter_table("assay_run", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("measured_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("reassay_reason", sa.Text(), server_default="", nullable=False)
        )
    with op.batch_alter_table("assay_result", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reportable", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("superseded_by_run_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("superseded_reason", sa.String(length=16), server_default="", nullable=False)
        )
        batch_op.create_foreign_key(batch_op.f(FK), "assay_run", ["superseded_by_run_id"], ["id"])
        batch_op.create_check_constraint(batch_op.f(CHECK), f"superseded_reason IN ({REASONS})")

    bind = op.get_bind()
    for code, digits in DIGITS.items():
        bind.execute(
            sa.text("UPDATE analyte SET significant_digits = :digits WHERE code = :code"),
            {"digits": digits, "code": code},
        )
    _settle_accepted_results(bind)


def _standing(result) -> int:
    """2: a value or a qualitative answer; 1: a value flagged at a limit; 0: no result."""
    if result.text is not None:
        return 2
    if result.flag is not None or result.comparator is not None:
        return 1
    return 2 if result.value is not None else 0


def _winner(earlier, newer):
    """Which of two results stays reportable, and why."""
    if earlier.flag == ">ULOQ" and newer.dilution > earlier.dilution and _standing(newer):
        return newer, "dilution"
    if _standing(newer) != _standing(earlier):
        return (newer if _standing(newer) > _standing(earlier) else earlier), "in_range"
    return newer, "latest"


def _settle_accepted_results(bind) -> None:
    results = bind.execute(
        sa.text(
            "SELECT r.id, r.run_id, r.analyte_id, r.value, r.flag, r.comparator, r.text, "
            "r.dilution, a.sample_type, s.visit_id "
            "FROM assay_result r "
            "JOIN assay_run run ON run.id = r.run_id "
            "JOIN aliquot a ON a.id = r.aliquot_id "
            "JOIN specimen s ON s.id = a.specimen_id "
            "WHERE run.status = 'accepted' "
            "ORDER BY run.decided_at, run.id, r.id"
        )
    ).all()
    standing = {}  # (visit, analyte, sample type) -> the reportable result so far
    changes = {}  # result id -> (reportable, superseded by run, reason)
    for result in results:
        group = (result.visit_id, result.analyte_id, result.sample_type)
        earlier = standing.get(group)
        if earlier is None:
            standing[group] = result
            changes[result.id] = (True, None, "")
            continue
        winner, reason = _winner(earlier, result)
        loser = result if winner is earlier else earlier
        standing[group] = winner
        changes[winner.id] = (True, None, "")
        changes[loser.id] = (False, winner.run_id, reason)
    update = sa.text(
        "UPDATE assay_result SET reportable = :reportable, superseded_by_run_id = :by, "
        "superseded_reason = :reason WHERE id = :id"
    ).bindparams(sa.bindparam("reportable", type_=sa.Boolean()))
    if changes:
        bind.execute(
            update,
            [
                {"id": id_, "reportable": reportable, "by": by, "reason": reason}
                for id_, (reportable, by, reason) in changes.items()
            ],
        )


def downgrade():
    with op.batch_alter_table("assay_result", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(CHECK), type_="check")
        batch_op.drop_constraint(batch_op.f(FK), type_="foreignkey")
        batch_op.drop_column("superseded_reason")
        batch_op.drop_column("superseded_by_run_id")
        batch_op.drop_column("reportable")
    with op.batch_alter_table("assay_run", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("reassay_reason")
        batch_op.drop_column("measured_on")
    with op.batch_alter_table("analyte", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("significant_digits")
