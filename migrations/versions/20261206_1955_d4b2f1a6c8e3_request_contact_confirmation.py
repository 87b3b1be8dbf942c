"""A request's contact address is mailed only once a manager has confirmed it: who
confirmed it, and when.

SQLite adds a column in place; batch mode would copy ``sample_request``, which the rows of
other tables point to (a copy fails on a database in use: foreign keys cannot be switched
off inside the migration's transaction). Alembic cannot name a foreign key written inline
in ADD COLUMN, so on SQLite that statement is written here, with the name the models
give it. SQLite cannot drop a column a foreign key uses: the downgrade first takes the
constraint out of the table's definition, which every row satisfies
(https://www.sqlite.org/lang_altertable.html, "otheralter"), then drops the columns.

Revision ID: d4b2f1a6c8e3
Revises: c3a1e0f5b7d2
Create Date: 2026-12-06 19:55:00.000000

"""

import re

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d4b2f1a6c8e3"
down_revision = "c3a1e0f5b7d2"
branch_labels = None
depends_on = None

TABLE = "sample_request"
FK = "fk_sample_request_contact_confirmed_by_id_user_account"


def upgrade():
    bind = op.get_bind()
    with op.batch_alter_table(TABLE, schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("contact_confirmed_at", sa.DateTime(timezone=True), nullable=True)
        )
        if bind.dialect.name != "sqlite":
            batch_op.add_column(sa.Column("contact_confirmed_by_id", sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                batch_op.f(FK), "user_account", ["contact_confirmed_by_id"], ["id"]
            )
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql(
            f"ALTER TABLE {TABLE} ADD COLUMN contact_confirmed_by_id INTEGER "
            f"CONSTRAINT {FK} REFERENCES user_account (id)"
        )


def _forget_sqlite_foreign_key(bind) -> None:
    table = bind.exec_driver_sql(
        f"SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{TABLE}'"
    ).scalar()
    rewritten, count = re.subn(rf"\s+CONSTRAINT {FK} REFERENCES user_account \(id\)", "", table)
    if count != 1:
        raise RuntimeError(f"{FK} not found in the definition of the {TABLE} table")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        f"UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = '{TABLE}'",
        (rewritten,),
    )
    # A new schema version makes every connection read the definition again.
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _forget_sqlite_foreign_key(bind)
    with op.batch_alter_table(TABLE, schema=None, recreate="never") as batch_op:
        if bind.dialect.name != "sqlite":
            batch_op.drop_constraint(batch_op.f(FK), type_="foreignkey")
        batch_op.drop_column("contact_confirmed_by_id")
        batch_op.drop_column("contact_confirmed_at")
