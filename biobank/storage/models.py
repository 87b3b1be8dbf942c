"""Where aliquots are: a tree of containers (room → freezer → shelf → rack → box) and the
position each stored aliquot holds in a box.

Positions live here, not on the aliquot row: samples sits below storage and knows nothing
of freezers. One row per stored aliquot; the unique constraints are what guarantee, under
any concurrency, one aliquot per position and one position per aliquot.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biobank.db import enum_check, utcnow
from biobank.extensions import db

CONTAINER_KINDS = ("room", "freezer", "tank", "shelf", "rack", "box")
# Where each kind may stand: a box in a rack or on a shelf, a rack on a shelf or in a
# freezer... Rooms are the roots of a site's tree.
PARENT_KINDS = {
    "room": (),
    "freezer": ("room",),
    "tank": ("room",),
    "shelf": ("freezer", "tank"),
    "rack": ("shelf", "freezer", "tank"),
    "box": ("rack", "shelf", "freezer", "tank"),
}
# Storage temperature classes: what a freezer keeps, what a specimen needs.
TEMPERATURE_CLASSES = ("-20", "-80", "-150", "-196")


class ContainerType(db.Model):
    """A model of container, as data: "81-place 2-inch cryobox" is a box of 9 × 9."""

    __tablename__ = "container_type"
    __table_args__ = (
        enum_check("kind", CONTAINER_KINDS),
        sa.CheckConstraint(
            "(kind = 'box') = (rows IS NOT NULL AND cols IS NOT NULL)", "grid_for_boxes"
        ),
        sa.CheckConstraint("rows BETWEEN 1 AND 26 AND cols BETWEEN 1 AND 99", "grid_size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    rows: Mapped[int | None]
    cols: Mapped[int | None]
    description: Mapped[str] = mapped_column(sa.Text, default="")


class Container(db.Model):
    __tablename__ = "container"
    __table_args__ = (
        enum_check("kind", CONTAINER_KINDS),
        enum_check("temperature_class", TEMPERATURE_CLASSES),
        sa.CheckConstraint("parent_id IS NULL OR parent_id <> id", "not_own_parent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    barcode: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(16))
    type_id: Mapped[int | None] = mapped_column(sa.ForeignKey("container_type.id"))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("container.id"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    # Order among its siblings (shelf 1, 2, …): the order boxes are filled and listed in.
    slot: Mapped[int] = mapped_column(default=0)
    # Freezers and tanks: the temperature they keep. Inherited by what is inside.
    temperature_class: Mapped[str | None] = mapped_column(sa.String(8))
    set_point_c: Mapped[float | None] = mapped_column(sa.Float)
    # Where it stands, in words ("Freezer −80 n°1 › Shelf 2 › Rack A"): services.describe()
    # of its ancestry, kept here because every scan shows it; rewritten when it moves.
    path: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    type: Mapped[ContainerType | None] = relationship()
    parent: Mapped[Container | None] = relationship(remote_side="Container.id")


class StoredPosition(db.Model):
    """The position a stored aliquot holds (also while it is checked out: its place is
    kept for its return)."""

    __tablename__ = "stored_position"
    __table_args__ = (
        sa.UniqueConstraint("box_id", "row", "col"),
        sa.CheckConstraint("row >= 1 AND col >= 1", "position_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    aliquot_id: Mapped[int] = mapped_column(sa.ForeignKey("aliquot.id"), unique=True)
    box_id: Mapped[int] = mapped_column(sa.ForeignKey("container.id"))
    row: Mapped[int]
    col: Mapped[int]
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)

    box: Mapped[Container] = relationship()
    aliquot = relationship("Aliquot")
