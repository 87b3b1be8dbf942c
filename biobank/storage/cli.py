"""flask storage …"""

from __future__ import annotations

from flask.cli import AppGroup

storage_cli = AppGroup("storage", help="Freezers, boxes, rack scans.")
