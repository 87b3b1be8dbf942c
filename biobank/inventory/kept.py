"""An uploaded inventory file kept between its preview and its apply.

A file input cannot be filled again by a page, and an inventory is megabytes, too large
to carry in a form: the upload is kept on the server, under the instance folder (or
``INVENTORY_UPLOAD_FOLDER``), in a folder of the user who sent it and named by its
SHA-256. The preview and the apply find it by that digest, only for that user, and read
it again whole, so that what is applied is exactly what was previewed. Files older than
a day are removed when the same user uploads again.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from flask import current_app

from biobank.inventory.services import sha256_of

KEPT_FOR_SECONDS = 24 * 3600
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _folder(user_id: int) -> Path:
    root = current_app.config.get("INVENTORY_UPLOAD_FOLDER") or os.path.join(
        current_app.instance_path, "inventory-uploads"
    )
    return Path(root) / str(int(user_id))


def keep(data: bytes, filename: str, user_id: int) -> str:
    """Keep the upload for its user; returns its SHA-256, by which it is found again."""
    folder = _folder(user_id)
    folder.mkdir(parents=True, exist_ok=True)
    _forget_old(folder)
    sha = sha256_of(data)
    _write(folder / f"{sha}.upload", data)
    name = Path(filename.replace("\\", "/")).name[:255] or "inventory"
    _write(folder / f"{sha}.json", json.dumps({"filename": name}).encode())
    return sha


def kept(sha: str, user_id: int) -> tuple[bytes, str] | None:
    """The kept file (its bytes and its name) of this user with this SHA-256, or None."""
    if not _SHA256.fullmatch(sha or ""):
        return None
    folder = _folder(user_id)
    try:
        data = (folder / f"{sha}.upload").read_bytes()
        about = json.loads((folder / f"{sha}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if sha256_of(data) != sha:  # damaged on disk: never apply other bytes than previewed
        return None
    return data, str(about.get("filename") or "inventory")


def _write(path: Path, data: bytes) -> None:
    """Written whole or not at all: a reader never meets half a file."""
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _forget_old(folder: Path) -> None:
    limit = time.time() - KEPT_FOR_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            continue  # removed by another request meanwhile
