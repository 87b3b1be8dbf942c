"""Create or drop a throw-away PostgreSQL database for the CI run.

Usage: pg_database.py create NAME | drop NAME

Connects to the maintenance database given by BIOBANK_CI_PG_ADMIN_URL (default:
postgresql://postgres@127.0.0.1:5432/test) with autocommit, as CREATE/DROP DATABASE
cannot run inside a transaction. Exits 2 with a clear message when PostgreSQL is
unreachable.
"""

from __future__ import annotations

import os
import re
import sys

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get("BIOBANK_CI_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in {"create", "drop"} or not NAME.fullmatch(argv[2]):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 64
    action, name = argv[1], argv[2]
    try:
        connection = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as err:
        print(f"PostgreSQL is unreachable at {ADMIN_URL}: {err}", file=sys.stderr)
        return 2
    with connection:
        if action == "create":
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            # WITH (FORCE) ends the sessions a killed test run may have left behind.
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    print(f"{action}: database {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
