"""The outcome of the last ``flask custody verify``, kept in the instance folder.

Monitoring (``/metrics``) reads it to tell when every chain was last checked and whether
they all held, so that a verification that stopped running, or found a break, raises an
alert. A small file rather than a row: verifying only reads the database it checks. It
is written on the machine the command runs on; scrape that machine's application.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from biobank.db import utcnow

FILE_NAME = "custody_verification.json"


@dataclass(frozen=True)
class Outcome:
    at: datetime
    intact: bool
    aliquots: int
    events: int
    broken_chains: int


def path_in(instance_path: str | os.PathLike) -> Path:
    return Path(instance_path) / FILE_NAME


def save(instance_path: str | os.PathLike, report, *, at: datetime | None = None) -> Outcome:
    """Keep the outcome of ``services.verify()`` (its ``VerifyReport``), replacing the one
    before in one step: a reader sees the old file or the new one, never half of one."""
    outcome = Outcome(
        at=at or utcnow(),
        intact=report.intact,
        aliquots=report.aliquots,
        events=report.events,
        broken_chains=report.broken_chains,
    )
    target = path_in(instance_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "at": outcome.at.isoformat(),
        "intact": outcome.intact,
        "aliquots": outcome.aliquots,
        "events": outcome.events,
        "broken_chains": outcome.broken_chains,
    }
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".custody-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return outcome


def load(instance_path: str | os.PathLike) -> Outcome | None:
    """The last outcome kept, or None when no verification was recorded here (or the
    file cannot be read as one)."""
    try:
        data = json.loads(path_in(instance_path).read_text(encoding="utf-8"))
        at = datetime.fromisoformat(data["at"])
        if at.tzinfo is None:
            return None
        return Outcome(
            at=at,
            intact=bool(data["intact"]),
            aliquots=int(data["aliquots"]),
            events=int(data["events"]),
            broken_chains=int(data["broken_chains"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
