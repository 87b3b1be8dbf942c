"""Pages: rack-scanner import (preview, then apply)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("racks", __name__, template_folder="templates")
