"""Rotate the master key: prepend a new key to the key file, re-wrap every encrypted file to it.

Re-wrapping rewrites only each file's 68-byte key section; file contents are never decrypted,
so no plaintext is written anywhere. The old keys stay in the key file (a half-finished run
still decrypts everything) until `--retire-old` removes those no file uses any more.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from datasets_app.crypto import (
    DecryptionError,
    KeyStore,
    KeyStoreError,
    is_encrypted,
    key_id_of,
    parse_key,
    parse_key_lines,
    read_header,
    rewrap,
)


@dataclass
class Tally:
    rewrapped: int = 0
    current: int = 0  # already on the target key
    plaintext: int = 0  # files under the storage dirs that are not encrypted
    failed: list[str] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Rotate the master key: add a new key (generated, --new-key-file or --new-key-stdin) at "
        "the top of HEARTH_MASTER_KEY_FILE and re-wrap every encrypted file under "
        "HEARTH_STORAGE_DIR and HEARTH_MODELS_DIR to it. Safe to re-run: --resume (or the same "
        "--new-key-file) continues an interrupted rotation. --retire-old then drops keys that no "
        "file uses; run it while nothing is uploading, and keep a copy of the old key file if "
        "encrypted backups made before the rotation must stay readable."
    )
    requires_system_checks: list[str] = []  # works with the database down
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--new-key-file", help="file holding the new base64 master key")
        source.add_argument(
            "--new-key-stdin", action="store_true", help="read the new base64 key from stdin"
        )
        source.add_argument(
            "--resume",
            action="store_true",
            help="add no key; re-wrap the remaining files to the current active key",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, write nothing"
        )
        parser.add_argument(
            "--retire-old",
            action="store_true",
            help="after a full pass, remove keys that no file uses any more",
        )

    def handle(self, *args: object, **options: object) -> None:
        key_file = self._key_file()
        dry_run = bool(options["dry_run"])
        lock = contextlib.nullcontext() if dry_run else _exclusive_lock(key_file)
        with lock:
            store = _load(key_file)
            new_key = self._new_key(options)
            target = store.active_id if new_key is None else key_id_of(new_key)
            if new_key is not None and target in store:
                if target != store.active_id:
                    raise CommandError(
                        f"Master key {target.hex()} is already in {key_file} as an older key; "
                        "a rotation needs a key that is new, or the active one to resume."
                    )
                new_key = None  # prepended by an earlier, interrupted run: resume
            target_name = target.hex()
            if new_key is None:
                self.stdout.write(f"Re-wrapping to the active master key {target.hex()}.")
            elif dry_run:
                # A generated key is thrown away: the real run generates its own.
                self.stdout.write(f"Would add a new master key to {key_file}.")
                target_name = "the new key"
            else:
                _prepend_key(key_file, new_key)
                store = _load(key_file)
                self.stdout.write(f"Added master key {target.hex()} to {key_file} (now active).")

            tally = self._rewrap_all(store, target, dry_run)
            verb = "would re-wrap" if dry_run else "re-wrapped"
            self.stdout.write(
                f"{verb}: {tally.rewrapped}, already on {target_name}: {tally.current}, "
                f"failed: {len(tally.failed)}, not encrypted: {tally.plaintext}"
            )
            if tally.plaintext:
                self.stderr.write(
                    f"Warning: {tally.plaintext} file(s) under the storage folders are not "
                    "encrypted."
                )
            if tally.failed:
                for line in tally.failed:
                    self.stderr.write(line)
                raise CommandError(
                    f"{len(tally.failed)} file(s) could not be re-wrapped; nothing was retired. "
                    "Fix them and run `rotate_keys --resume`."
                )
            if options["retire_old"]:
                self._retire(key_file, store, target, dry_run)

    def _key_file(self) -> Path:
        if settings.HEARTH_MASTER_KEY:
            raise CommandError(
                "The master key comes from the HEARTH_MASTER_KEY environment variable, which "
                "this command cannot change, and a rotation must keep the old key beside the "
                "new one. Switch to a key file: write the current value to a file (mode 0600) "
                "on its own line, set HEARTH_MASTER_KEY_FILE to its path, unset "
                "HEARTH_MASTER_KEY, restart the services, then run rotate_keys again."
            )
        if not settings.HEARTH_MASTER_KEY_FILE:
            raise CommandError("Set HEARTH_MASTER_KEY_FILE: there is no master key to rotate.")
        return Path(settings.HEARTH_MASTER_KEY_FILE)

    def _new_key(self, options: dict[str, object]) -> bytes | None:
        """The key to rotate to; None to resume on the active key."""
        if options["resume"]:
            return None
        if options["new_key_file"]:
            path = Path(str(options["new_key_file"]))
            try:
                return _single_key(path.read_text(encoding="ascii"), f"new key file {path}")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"Cannot read new key file {path}: {exc}") from None
        if options["new_key_stdin"]:
            stdin = options.get("stdin") or sys.stdin
            return _single_key(stdin.read(), "standard input")
        return secrets.token_bytes(32)

    def _rewrap_all(self, store: KeyStore, target: bytes, dry_run: bool) -> Tally:
        tally = Tally()
        for path in _stored_files():
            try:
                if not is_encrypted(path):
                    tally.plaintext += 1
                elif dry_run:
                    key_id = read_header(path).key_id
                    if key_id == target:
                        tally.current += 1
                    elif key_id not in store:
                        tally.failed.append(f"{path}: unknown master key {key_id.hex()}")
                    else:
                        tally.rewrapped += 1
                elif rewrap(path, store, target):
                    tally.rewrapped += 1
                else:
                    tally.current += 1
            except (OSError, DecryptionError, KeyStoreError) as exc:
                tally.failed.append(f"{path}: {exc}")
        return tally

    def _retire(self, key_file: Path, store: KeyStore, target: bytes, dry_run: bool) -> None:
        # A second pass, after the re-wrap: it also sees files written during the first one.
        used = {target}
        for path in _stored_files():
            try:
                if is_encrypted(path):
                    used.add(read_header(path).key_id)
            except (OSError, DecryptionError) as exc:
                # An unreadable file might still need an old key: retiring is irreversible.
                raise CommandError(f"{path}: {exc}; no key was retired.") from None
        if dry_run:
            # Nothing was re-wrapped, so every file would be on the target key by now.
            retired = [k for k in store.key_ids if k != target]
        else:
            retired = [k for k in store.key_ids if k not in used]
        if not retired:
            self.stdout.write("No key to retire.")
            return
        ids = ", ".join(k.hex() for k in retired)
        if dry_run:
            self.stdout.write(f"Would retire master key(s): {ids}.")
            return
        _remove_keys(key_file, set(retired))
        self.stdout.write(f"Retired master key(s): {ids}.")


def _single_key(text: str, source: str) -> bytes:
    try:
        keys = parse_key_lines(text, source)
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from None
    if len(keys) != 1:
        raise CommandError(f"{source} must hold exactly one key, not {len(keys)}.")
    return keys[0]


def _load(key_file: Path) -> KeyStore:
    try:
        return KeyStore.from_key_file(key_file)
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from None


def _stored_files() -> Iterator[Path]:
    """Regular files under the storage and models folders, each once; symlinks not followed."""
    seen: set[tuple[int, int]] = set()
    for root in (settings.HEARTH_STORAGE_DIR, settings.HEARTH_MODELS_DIR):
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = Path(folder, name)
                try:
                    info = path.lstat()
                except FileNotFoundError:  # deleted while we walk
                    continue
                if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    yield path


@contextlib.contextmanager
def _exclusive_lock(key_file: Path) -> Iterator[None]:
    """One rotation at a time: two would prepend two keys and race on the same files."""
    fd = os.open(key_file.with_name(key_file.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CommandError("Another rotate_keys is running.") from None
        yield
    finally:
        os.close(fd)


def _replace_text(path: Path, text: str) -> None:
    """Write the key file atomically (temp + fsync + rename): a crash keeps the old or the new
    file whole, never a key file missing a key that files still use."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _prepend_key(key_file: Path, key: bytes) -> None:
    added = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"# master key {key_id_of(key).hex()} added {added}\n{base64.b64encode(key).decode()}\n"
    _replace_text(key_file, line + key_file.read_text(encoding="ascii"))


def _remove_keys(key_file: Path, key_ids: set[bytes]) -> None:
    hex_ids = {k.hex() for k in key_ids}
    kept = []
    for line in key_file.read_text(encoding="ascii").splitlines(keepends=True):
        text = line.strip()
        if text.startswith("# master key ") and text.split()[3] in hex_ids:
            continue  # the comment _prepend_key wrote above a retired key (stripped text
            # that starts with "# master key " has a fourth word)
        if text and not text.startswith("#") and key_id_of(parse_key(text)) in key_ids:
            continue
        kept.append(line)
    _replace_text(key_file, "".join(kept))
