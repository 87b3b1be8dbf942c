"""Canonical form and hashes of custody events, and the Merkle digest of all chains.

Pure functions: the same event content gives the same hash on every database and every
machine, which is what lets `custody verify` recompute a chain written years earlier.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime


def canonical_json(value) -> str:
    """Sorted keys, no spaces, UTF-8 kept: one text for one content."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def iso_utc(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds, whatever the zone it was given in."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    barcode: str,
    seq: int,
    kind: str,
    at: datetime,
    actor: str,
    from_location: str | None,
    to_location: str | None,
    reason: str | None,
    details: str,
    prev_hash: str,
) -> str:
    """SHA-256 over the event's canonical content and the previous event's hash."""
    content = {
        "aliquot": barcode,
        "seq": seq,
        "kind": kind,
        "at": iso_utc(at),
        "actor": actor,
        "from": from_location,
        "to": to_location,
        "reason": reason,
        # details is already canonical JSON text; embedding the text (not the parsed
        # value) means a row edited to equivalent-but-different JSON is still caught.
        "details": details,
        "prev": prev_hash,
    }
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def _pair(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Iterable[bytes]) -> tuple[str, int]:
    """Root of a Merkle tree over leaf digests, in O(log n) memory.

    Leaves are hashed with a 0x00 prefix and inner nodes with 0x01 (RFC 6962 style) so a
    leaf can never be passed off as a node. An odd node is promoted unchanged.
    Returns the root as hex and the number of leaves.
    """
    stack: list[tuple[int, bytes]] = []  # (height, digest), heights strictly decreasing
    count = 0
    for leaf in leaves:
        node = (0, hashlib.sha256(b"\x00" + leaf).digest())
        count += 1
        while stack and stack[-1][0] == node[0]:
            height, left = stack.pop()
            node = (height + 1, _pair(left, node[1]))
        stack.append(node)
    if not stack:
        return hashlib.sha256(b"").hexdigest(), 0
    _, root = stack.pop()
    while stack:
        _, left = stack.pop()
        root = _pair(left, root)
    return root.hex(), count


def head_leaf(barcode: str, count: int, head: str) -> bytes:
    return f"{barcode}:{count}:{head}".encode()
