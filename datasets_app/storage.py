"""Encrypted file storage for dataset versions (and later model artifacts).

Everything under HEARTH_STORAGE_DIR is ciphertext. Plaintext exists only in a job's or an upload's
private work directory (HEARTH_DATA_DIR/work/<random>, mode 0700), removed when the work ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from .crypto import DecryptingReader, EncryptedWriter, keystore_from_settings


def storage_root() -> Path:
    return Path(settings.HEARTH_STORAGE_DIR)


def work_root() -> Path:
    return Path(settings.DATA_DIR) / "work"


def new_storage_key(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex}.hrth"


def path_for(key: str) -> Path:
    path = (storage_root() / key).resolve()
    if storage_root().resolve() not in path.parents:
        raise ValueError(f"storage key escapes the storage root: {key}")
    return path


@contextlib.contextmanager
def encrypted_output(key: str) -> Iterator[EncryptedWriter]:
    """Write a new encrypted file; it appears under `key` only if the block completes."""
    final = path_for(key)
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = final.with_name(final.name + ".partial")
    try:
        with open(partial, "wb") as raw, EncryptedWriter(raw, keystore_from_settings()) as writer:
            yield writer
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)


def open_plaintext(key: str) -> BinaryIO:
    """A verifying, decrypting binary stream over a stored file (never written anywhere)."""
    return DecryptingReader(open(path_for(key), "rb"), keystore_from_settings())


def delete(key: str) -> None:
    path_for(key).unlink(missing_ok=True)


@contextlib.contextmanager
def private_workdir(purpose: str) -> Iterator[Path]:
    """A fresh 0700 folder for plaintext work files, removed afterwards whatever happens."""
    work_root().mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = work_root() / f"{purpose}-{uuid.uuid4().hex}"
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
