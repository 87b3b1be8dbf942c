"""The role matrix of DESIGN.md, as data: which role may do what.

Routes name a permission, never a role, so that changing who may do something is a
change to this table alone. tests/auth/test_role_matrix.py walks every route with every
role against it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    TECHNICIAN = "technician"
    RESEARCHER = "researcher"
    MANAGER = "manager"
    ADMIN = "admin"


class Permission(StrEnum):
    SIGNED_IN = "signed_in"  # any account: home page, own settings, the protocol
    VIEW_SAMPLES = "view_samples"  # participant-level data: scan, aliquot, participant pages
    REGISTER = "register"  # visits, specimens, aliquots, participants; print labels
    HANDLE = "handle"  # store, move, check out, return, pick, ship, receive
    IMPORT_ASSAYS = "import_assays"
    ACCEPT_RUNS = "accept_runs"
    CATALOGUE = "catalogue"  # aggregate counts, own requests
    APPROVE = "approve"  # approve requests, overrides, destroy, consent withdrawal
    CONFIGURE = "configure"  # sites, storage set-up, protocol load, analytes, templates
    ADMINISTER = "administer"  # users, tokens, printers


_BENCH = {
    Permission.SIGNED_IN,
    Permission.VIEW_SAMPLES,
    Permission.REGISTER,
    Permission.HANDLE,
    Permission.IMPORT_ASSAYS,
}
_MANAGER = _BENCH | {
    Permission.ACCEPT_RUNS,
    Permission.CATALOGUE,
    Permission.APPROVE,
    Permission.CONFIGURE,
}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.TECHNICIAN: frozenset(_BENCH),
    Role.RESEARCHER: frozenset({Permission.SIGNED_IN, Permission.CATALOGUE}),
    Role.MANAGER: frozenset(_MANAGER),
    Role.ADMIN: frozenset(_MANAGER | {Permission.ADMINISTER}),
}


def role_may(role: str, permission: Permission) -> bool:
    return permission in PERMISSIONS.get(Role(role), frozenset())
