"""Master keys: several by key id, one active; wraps per-file data keys and derives sub-keys.

A key file holds one base64-encoded 32-byte key per line. Blank lines and lines starting with
"#" are ignored. The first key is the active one (new files and re-wraps use it); the keys
below it are older ones kept so that files not yet re-wrapped still decrypt. Rotation
therefore prepends. A single key can also come from the HEARTH_MASTER_KEY setting.

Only `keystore_from_settings` touches Django, and only when called.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_SIZE = 32
KEY_ID_SIZE = 8
WRAP_NONCE_SIZE = 12
TAG_SIZE = 16
# nonce + encrypted data key + GCM tag: fixed, so the key section of a file is fixed-length.
WRAPPED_KEY_SIZE = WRAP_NONCE_SIZE + KEY_SIZE + TAG_SIZE


class KeyStoreError(Exception):
    """The master key configuration is unusable (missing, not base64, not 32 bytes)."""


class DecryptionError(Exception):
    """An encrypted file cannot be decrypted: modified, truncated, reordered or wrong key."""


class UnknownKeyError(DecryptionError):
    """The file's master key is not in the key store."""


def key_id_of(key: bytes) -> bytes:
    """The public id of a master key: the first 8 bytes of its SHA-256."""
    return hashlib.sha256(key).digest()[:KEY_ID_SIZE]


def parse_key(value: str, where: str = "master key") -> bytes:
    """Decode one base64 master key, with an error that names where it came from."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyStoreError(f"{where} is not valid base64") from None
    if len(key) != KEY_SIZE:
        raise KeyStoreError(
            f"{where} decodes to {len(key)} bytes; a master key must be {KEY_SIZE} random bytes"
        )
    return key


def parse_key_lines(text: str, source: str) -> list[bytes]:
    """Keys of a key file's text, active first. Duplicates are dropped (a repeated prepend)."""
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key = parse_key(line, f"{source}, line {number}")
        if key not in keys:
            keys.append(key)
    if not keys:
        raise KeyStoreError(f"{source} holds no master key")
    return keys


class KeyStore:
    """Master keys by id. `keys[0]` is the active key."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        self._keys: dict[bytes, bytes] = {}
        for key in keys:
            if len(key) != KEY_SIZE:
                raise KeyStoreError(f"a master key must be {KEY_SIZE} bytes, not {len(key)}")
            self._keys.setdefault(key_id_of(key), key)
        if not self._keys:
            raise KeyStoreError("the key store holds no master key")
        self.active_id: bytes = next(iter(self._keys))

    @classmethod
    def from_base64(cls, value: str) -> KeyStore:
        """A store of the single key in `value` (the HEARTH_MASTER_KEY form)."""
        return cls([parse_key(value, "HEARTH_MASTER_KEY")])

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str]) -> KeyStore:
        try:
            text = Path(path).read_text(encoding="ascii")
        except FileNotFoundError:
            raise KeyStoreError(f"master key file {path} does not exist") from None
        except UnicodeDecodeError:
            raise KeyStoreError(f"master key file {path} is not ASCII text") from None
        return cls(parse_key_lines(text, f"master key file {path}"))

    @classmethod
    def from_settings(cls) -> KeyStore:
        """From HEARTH_MASTER_KEY, else HEARTH_MASTER_KEY_FILE (the precedence production uses).

        Read on every call, not cached: after `rotate_keys` prepends a key, running processes
        encrypt new files with it straight away.
        """
        from django.conf import settings

        value = getattr(settings, "HEARTH_MASTER_KEY", "")
        if value:
            return cls.from_base64(value)
        path = getattr(settings, "HEARTH_MASTER_KEY_FILE", "")
        if path:
            return cls.from_key_file(path)
        raise KeyStoreError("set HEARTH_MASTER_KEY or HEARTH_MASTER_KEY_FILE")

    @property
    def key_ids(self) -> list[bytes]:
        """Ids of every key, active first."""
        return list(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def _key(self, key_id: bytes) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyError(
                f"file was encrypted with master key {key_id.hex()}, which is not in the key "
                f"store (it holds {', '.join(k.hex() for k in self._keys)})"
            ) from None

    def wrap(self, data_key: bytes, aad: bytes, key_id: bytes | None = None) -> tuple[bytes, bytes]:
        """Encrypt `data_key` under the active (or the given) master key.

        Returns (key id, nonce + ciphertext + tag), the latter WRAPPED_KEY_SIZE bytes.
        """
        key_id = self.active_id if key_id is None else key_id
        nonce = os.urandom(WRAP_NONCE_SIZE)
        return key_id, nonce + AESGCM(self._key(key_id)).encrypt(nonce, data_key, aad)

    def unwrap(self, key_id: bytes, wrapped: bytes, aad: bytes) -> bytes:
        key = self._key(key_id)
        if len(wrapped) != WRAPPED_KEY_SIZE:
            raise DecryptionError(
                f"wrapped data key is {len(wrapped)} bytes, not {WRAPPED_KEY_SIZE}"
            )
        nonce, sealed = wrapped[:WRAP_NONCE_SIZE], wrapped[WRAP_NONCE_SIZE:]
        try:
            return AESGCM(key).decrypt(nonce, sealed, aad)
        except InvalidTag:
            # The key id matched, so the key is the right one: the bytes were changed.
            raise DecryptionError(
                f"the file header or its wrapped data key (master key {key_id.hex()}) failed "
                "authentication: the file was modified"
            ) from None

    def derive(
        self, purpose: str, context: bytes, *, key_id: bytes | None = None, length: int = 32
    ) -> bytes:
        """A sub-key for `purpose` (e.g. "pseudonym-hmac") via HKDF-SHA256 from a master key.

        The active key by default. Derived values change when the active key rotates; callers
        that need stable output across a rotation (pseudonyms joined across versions) record the
        key id they used and pass it back here.
        """
        if not purpose:
            raise ValueError("purpose must not be empty")
        # The purpose is length-free text and the context arbitrary bytes: a NUL separator keeps
        # ("a", b"bc") and ("ab", b"c") apart, since purposes are never allowed to hold NUL.
        if "\0" in purpose:
            raise ValueError("purpose must not contain NUL")
        info = b"hearth/" + purpose.encode() + b"\0" + context
        hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info)
        return hkdf.derive(self._key(self.active_id if key_id is None else key_id))


def keystore_from_settings() -> KeyStore:
    """The key store configured in Django settings (see KeyStore.from_settings)."""
    return KeyStore.from_settings()
