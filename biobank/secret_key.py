"""The key that signs the session, remember-me and CSRF cookies.

There is no default key, in any mode: whoever knows the key can forge a session cookie
for any account. A key configured (instance/config.py, the SECRET_KEY environment
variable, or the settings given to ``create_app``) is used when it is long enough;
otherwise a random key is generated at the first start and kept in
``instance/secret_key``, readable by its owner only, and read again at every later start.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from collections.abc import Mapping
from pathlib import Path

KEY_FILE = "secret_key"
MIN_KEY_BYTES = 32
# Another worker starting at the same moment may have created the file and not yet
# written it: how long to wait for its key before calling the file empty.
WRITE_GRACE_SECONDS = 2.0


class SecretKeyError(RuntimeError):
    """The application must not start with this key."""


def signing_key(config: Mapping, instance_path: str | os.PathLike) -> str | bytes:
    """The key to sign cookies with: the one configured, or the instance's own.

    A configured key shorter than 32 bytes is refused, except when testing
    (``TESTING = True``). Raises ``SecretKeyError`` with what to do."""
    configured = config.get("SECRET_KEY")
    if configured:
        size = len(configured.encode() if isinstance(configured, str) else configured)
        if size < MIN_KEY_BYTES and not config.get("TESTING"):
            raise SecretKeyError(
                f"SECRET_KEY is {size} bytes long; a key that signs sessions needs at least "
                f"{MIN_KEY_BYTES}. Set a long random value (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'), or remove SECRET_KEY to have one "
                f"generated and kept in {Path(instance_path) / KEY_FILE}."
            )
        return configured
    return instance_key(Path(instance_path) / KEY_FILE)


def instance_key(path: Path) -> str:
    """The key kept in ``path``, created with a new random key when missing.

    The file is created with O_EXCL and mode 0600: of several workers starting together,
    one creates and writes it and the others read the same key."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    key = secrets.token_urlsafe(48)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        # An empty file would stop every later start: leave none behind.
        path.unlink(missing_ok=True)
        raise
    return key


def _read_key(path: Path) -> str:
    deadline = time.monotonic() + WRITE_GRACE_SECONDS
    while True:
        with open(path, encoding="utf-8") as file:
            mode = os.fstat(file.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SecretKeyError(
                    f"{path} can be read or changed by other users (mode "
                    f"{stat.S_IMODE(mode):04o}): whoever reads it can sign in as anyone. "
                    f"Run: chmod 600 {path}"
                )
            key = file.read().strip()
        if key or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # being written by the worker that created it
    if not key:
        raise SecretKeyError(
            f"{path} is empty. Delete it to have a new key generated at the next start "
            "(everyone will have to sign in again)."
        )
    if len(key.encode()) < MIN_KEY_BYTES:
        raise SecretKeyError(
            f"The key in {path} is {len(key.encode())} bytes long; at least "
            f"{MIN_KEY_BYTES} are needed. Delete the file to have a new key generated."
        )
    return key
