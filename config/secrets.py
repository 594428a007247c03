"""Secrets for the embedded default: generated once, kept in the data directory, mode 0600."""

import base64
import os
import secrets
from pathlib import Path


def read_or_create(path: Path, generate) -> str:
    """Return the secret stored at `path`, creating it atomically (O_EXCL) on first use.

    Several processes (web, worker, manage.py) may start at once; O_EXCL makes exactly one of
    them write the file and the others read it.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written yet
            value = path.read_text().strip()
            if value:
                return value
            import time

            time.sleep(0.05)
        raise RuntimeError(f"secret file {path} is empty") from None
    value = generate()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def new_secret_key() -> str:
    return secrets.token_urlsafe(50)


def new_master_key() -> str:
    """A 256-bit key for AES-256-GCM envelope encryption, base64-encoded."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def new_audit_key() -> str:
    """The HMAC key of the audit trail's hash chain: 384 random bits, URL-safe text."""
    return secrets.token_urlsafe(48)
