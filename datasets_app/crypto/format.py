"""Chunked, streaming AES-256-GCM file format for dataset files and model artifacts at rest.

Layout (integers big-endian):

    fixed header, 32 bytes: associated data of every chunk and of the wrapped data key
       0   4  magic b"HRTH"
       4   1  format version (1)
       5   4  chunk size: plaintext bytes per chunk (default 1 MiB)
       9   7  random nonce prefix
      16  16  random file id
    key section, 68 bytes: the only part key rotation rewrites
      32   8  master key id (first 8 bytes of SHA-256 of the master key)
      40  12  random nonce of the key wrap
      52  48  the file's random 32-byte data key, AES-256-GCM(master key, aad=fixed header) + tag
    chunks, from offset 100; chunk i (i = 0, 1, ...):
          AES-256-GCM(data key, nonce = prefix(7) | i (4 bytes) | last (1 byte: 1 on the final
          chunk, else 0), aad = fixed header) = ciphertext + 16-byte tag. Every chunk but the
          final one holds exactly `chunk size` bytes; the final one 1..chunk size bytes, or 0
          when the plaintext is empty (a file always ends with a final chunk).

The counter in the nonce catches reordered, duplicated or dropped chunks, the last flag catches
a file cut at a chunk boundary, the header in the associated data catches header edits. The
chunks do not authenticate the key section, so rotation re-wraps the data key without reading
or rewriting a single chunk; the wrapped key is authenticated by its own tag.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .keystore import KEY_ID_SIZE, TAG_SIZE, WRAPPED_KEY_SIZE, DecryptionError, KeyStore

MAGIC = b"HRTH"
FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 64 << 20  # bounds the memory a reader allocates for one chunk
NONCE_PREFIX_SIZE = 7
FILE_ID_SIZE = 16
_HEADER = struct.Struct(">4sBI7s16s")
HEADER_SIZE = _HEADER.size  # 32
KEY_SECTION_SIZE = KEY_ID_SIZE + WRAPPED_KEY_SIZE  # 68
CHUNKS_OFFSET = HEADER_SIZE + KEY_SECTION_SIZE  # 100
MAX_CHUNKS = 1 << 32  # the 4-byte counter must never wrap: a repeated nonce breaks GCM
_COPY_BLOCK = 1 << 20
_TEMP_SUFFIX = ".hearth-tmp"

Buffer = bytes | bytearray | memoryview  # collections.abc.Buffer needs Python 3.12


class NotEncryptedError(DecryptionError):
    """The file does not start with the Hearth magic."""


@dataclass(frozen=True)
class FileHeader:
    version: int
    chunk_size: int
    nonce_prefix: bytes
    file_id: bytes
    key_id: bytes
    wrapped_key: bytes
    raw: bytes  # the 32 fixed header bytes: associated data of the chunks and the wrapped key


@dataclass(frozen=True)
class PlaintextInfo:
    size: int
    sha256: str  # hex


def _parse(prefix: bytes, name: str) -> FileHeader:
    if prefix[: len(MAGIC)] != MAGIC:
        raise NotEncryptedError(f"{name} is not a Hearth encrypted file (no {MAGIC!r} magic)")
    if len(prefix) < CHUNKS_OFFSET:
        raise DecryptionError(f"{name} is truncated inside its {CHUNKS_OFFSET}-byte header")
    _, version, chunk_size, nonce_prefix, file_id = _HEADER.unpack_from(prefix)
    if version != FORMAT_VERSION:
        raise DecryptionError(
            f"{name} uses encryption format version {version}; this Hearth reads version "
            f"{FORMAT_VERSION}"
        )
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise DecryptionError(f"{name} has an invalid chunk size {chunk_size}: header modified")
    return FileHeader(
        version=version,
        chunk_size=chunk_size,
        nonce_prefix=nonce_prefix,
        file_id=file_id,
        key_id=prefix[HEADER_SIZE : HEADER_SIZE + KEY_ID_SIZE],
        wrapped_key=prefix[HEADER_SIZE + KEY_ID_SIZE : CHUNKS_OFFSET],
        raw=prefix[:HEADER_SIZE],
    )


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _fill(src: BinaryIO, view: memoryview) -> int:
    """Read into `view` until full or end of stream (pipes and sockets return short reads)."""
    got = 0
    while got < len(view):
        n = src.readinto(view[got:])
        if not n:
            break
        got += n
    return got


class EncryptedWriter:
    """Encrypts what is written to it into `fileobj` (which it does not close): a buffered
    binary stream whose write() takes every byte, as files opened "wb" and BytesIO do.

    The header goes out at once; plaintext is buffered to whole chunks. `close()` writes the
    final chunk. Leaving a `with` block on an exception does NOT write it, so an interrupted
    write leaves a file that fails to decrypt instead of a valid-looking truncated one.
    """

    def __init__(
        self, fileobj: BinaryIO, keystore: KeyStore, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}")
        self._out = fileobj
        self._chunk_size = chunk_size
        self._prefix = os.urandom(NONCE_PREFIX_SIZE)
        self.file_id = os.urandom(FILE_ID_SIZE)
        self._aad = _HEADER.pack(MAGIC, FORMAT_VERSION, chunk_size, self._prefix, self.file_id)
        data_key = AESGCM.generate_key(bit_length=256)
        self.key_id, wrapped = keystore.wrap(data_key, self._aad)
        self._aead = AESGCM(data_key)
        self._out.write(self._aad + self.key_id + wrapped)
        # Fixed buffers, reused for every chunk: fresh megabyte allocations cost page faults.
        self._pending = bytearray(chunk_size)  # plaintext not yet encrypted: [: self._filled]
        self._filled = 0
        self._sealed = memoryview(bytearray(chunk_size + TAG_SIZE))
        self._counter = 0
        self._sha256 = hashlib.sha256()
        self.plaintext_size = 0
        self.closed = False

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the plaintext written so far."""
        return self._sha256.hexdigest()

    def _emit(self, chunk: Buffer, last: bool) -> None:
        if self._counter >= MAX_CHUNKS:
            raise ValueError("file too large for this chunk size (2**32 chunks)")
        nonce = _nonce(self._prefix, self._counter, last)
        sealed = self._sealed[: len(chunk) + TAG_SIZE]
        self._aead.encrypt_into(nonce, chunk, self._aad, sealed)
        # The io contract lets a stream use `b` only during write(), so the buffer is reusable.
        self._out.write(sealed)
        self._counter += 1

    def write(self, data: Buffer) -> int:
        if self.closed:
            raise ValueError("write to a closed EncryptedWriter")
        view = memoryview(data).cast("B")
        size = len(view)
        self._sha256.update(view)
        self.plaintext_size += size
        # A full chunk is held back until more data arrives: only close() knows which chunk is
        # the last, and the last one must carry the flag.
        pos = 0
        if self._filled:
            pos = min(size, self._chunk_size - self._filled)
            self._pending[self._filled : self._filled + pos] = view[:pos]
            self._filled += pos
            if pos == size:
                return size
            self._emit(self._pending, last=False)
            self._filled = 0
        while size - pos > self._chunk_size:  # large writes are encrypted without copying
            self._emit(view[pos : pos + self._chunk_size], last=False)
            pos += self._chunk_size
        self._filled = size - pos
        self._pending[: self._filled] = view[pos:]
        return size

    def close(self) -> None:
        if self.closed:
            return
        self._emit(memoryview(self._pending)[: self._filled], last=True)
        self.closed = True
        self._out.flush()

    def __enter__(self) -> EncryptedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.closed = True


class DecryptingReader(io.BufferedIOBase):
    """A readable binary stream of the plaintext of an encrypted file, verified chunk by chunk.

    Every byte returned has been authenticated, but whether the file is complete is known only
    at its end: a truncated or modified file raises DecryptionError from the read that reaches
    the damage, so consumers must treat that exception as "the whole result is invalid".
    Like io's own wrappers, closing the reader closes `fileobj` unless close_source=False.
    """

    def __init__(self, fileobj: BinaryIO, keystore: KeyStore, *, close_source: bool = True) -> None:
        super().__init__()
        self._src = fileobj
        self._close_source = close_source
        self._name = str(getattr(fileobj, "name", "encrypted stream"))
        prefix = bytearray(CHUNKS_OFFSET)
        got = _fill(fileobj, memoryview(prefix))
        self.header = _parse(bytes(prefix[:got]), self._name)
        data_key = keystore.unwrap(self.header.key_id, self.header.wrapped_key, self.header.raw)
        self._aead = AESGCM(data_key)
        self._record_size = self.header.chunk_size + TAG_SIZE
        # One byte more than a chunk record: if it fills, another chunk follows (and that byte
        # is carried over), so the current chunk cannot be the final one. Works on pipes too.
        self._record = bytearray(self._record_size + 1)
        self._carry = False
        self._counter = 0
        self._eof = False
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes | None:
        """Decrypt and verify the next chunk; None after the final one."""
        if self._eof:
            return None
        view = memoryview(self._record)
        start = 0
        if self._carry:
            view[0] = view[self._record_size]
            start = 1
        got = start + _fill(self._src, view[start:])
        last = got <= self._record_size
        self._carry = not last
        size = got if last else self._record_size
        i = self._counter
        if size == 0:
            raise DecryptionError(f"{self._name} is truncated: it has no chunks")
        if size < TAG_SIZE:
            raise DecryptionError(f"{self._name} is truncated inside chunk {i}")
        if i >= MAX_CHUNKS:
            raise DecryptionError(f"{self._name} has more than 2**32 chunks: modified")
        record = view[:size]
        try:
            plain = self._aead.decrypt(
                _nonce(self.header.nonce_prefix, i, last), record, self.header.raw
            )
        except InvalidTag:
            raise DecryptionError(self._explain(record, i, last)) from None
        self._counter += 1
        self._eof = last
        return plain

    def _explain(self, record: memoryview, i: int, last: bool) -> str:
        # Runs on failure only: a chunk that verifies as non-final where the file ends means
        # the chunks after it were cut off, the most common damage (a copy that stopped).
        if last:
            with contextlib.suppress(InvalidTag):
                self._aead.decrypt(
                    _nonce(self.header.nonce_prefix, i, False), record, self.header.raw
                )
                return (
                    f"{self._name} is truncated: it ends after chunk {i}, which is not the final "
                    "chunk"
                )
        # The key id matched and the data key unwrapped, so the key is right: the bytes changed.
        return (
            f"chunk {i} of {self._name} failed authentication: the file was modified, truncated "
            "or its chunks reordered"
        )

    def _fill_buffer(self) -> bool:
        """Make sure unread plaintext is buffered; False at the end of the file."""
        while self._pos >= len(self._buf):
            chunk = self._next_chunk()
            if chunk is None:
                return False
            self._buf, self._pos = chunk, 0
        return True

    def read1(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes from the current chunk (TextIOWrapper reads through this)."""
        self._checkClosed()
        if not self._fill_buffer():
            return b""
        end = len(self._buf)
        if size is not None and size >= 0:
            end = min(end, self._pos + size)
        data = self._buf[self._pos : end]
        self._pos = end
        return data

    def read(self, size: int | None = -1) -> bytes:
        self._checkClosed()
        if size is None or size < 0:
            return b"".join(self.iter_chunks())
        parts = []
        while size > 0 and (part := self.read1(size)):
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def readinto(self, buffer: Buffer) -> int:
        self._checkClosed()
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._fill_buffer():
            take = min(len(view) - done, len(self._buf) - self._pos)
            view[done : done + take] = memoryview(self._buf)[self._pos : self._pos + take]
            self._pos += take
            done += take
        return done

    def iter_chunks(self) -> Iterator[bytes]:
        """The rest of the plaintext, one verified chunk at a time (for streaming responses)."""
        self._checkClosed()
        if self._pos < len(self._buf):
            yield self._buf[self._pos :]
        self._buf, self._pos = b"", 0
        while (chunk := self._next_chunk()) is not None:
            if chunk:
                yield chunk

    def close(self) -> None:
        if not self.closed and self._close_source:
            self._src.close()
        super().close()


def open_decrypted(path: str | os.PathLike[str], keystore: KeyStore) -> DecryptingReader:
    """Open an encrypted file for reading; closing the reader closes the file."""
    src = open(path, "rb")  # noqa: SIM115 - owned by the returned reader
    try:
        return DecryptingReader(src, keystore)
    except BaseException:
        src.close()
        raise


@contextlib.contextmanager
def _atomic_output(dst: Path, *, durable: bool) -> Iterator[BinaryIO]:
    """A new 0600 file that appears at `dst` only once complete (temp file + rename), so no
    reader, and no later run, mistakes a half-written file for a whole one."""
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(dst.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encrypt_file(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    keystore: KeyStore,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> PlaintextInfo:
    """Encrypt `src_path` into a new file at `dst_path` (mode 0600, written atomically, fsynced).

    Returns the plaintext's size and SHA-256, computed in the same pass.
    """
    with (
        open(src_path, "rb") as src,
        _atomic_output(Path(dst_path), durable=True) as out,
        EncryptedWriter(out, keystore, chunk_size=chunk_size) as writer,
    ):
        block = memoryview(bytearray(_COPY_BLOCK))
        while n := src.readinto(block):
            writer.write(block[:n])
    return PlaintextInfo(size=writer.plaintext_size, sha256=writer.sha256)


def decrypt_to_path(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], keystore: KeyStore
) -> PlaintextInfo:
    """Decrypt into `dst` (mode 0600), e.g. a job's private work dir.

    `dst` appears only when the whole file has been verified; on any error nothing is left.
    Not fsynced: work files are scratch, re-creatable from the encrypted original.
    """
    sha256 = hashlib.sha256()
    size = 0
    with open_decrypted(src, keystore) as reader, _atomic_output(Path(dst), durable=False) as out:
        for chunk in reader.iter_chunks():
            sha256.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return PlaintextInfo(size=size, sha256=sha256.hexdigest())


def is_encrypted(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts with the Hearth magic."""
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def read_header(path: str | os.PathLike[str]) -> FileHeader:
    """The header of an encrypted file (key id, chunk size, file id, ...), unauthenticated."""
    with open(path, "rb") as f:
        return _parse(f.read(CHUNKS_OFFSET), str(path))


def rewrap(
    path: str | os.PathLike[str], keystore: KeyStore, new_key_id: bytes | None = None
) -> bool:
    """Re-wrap the file's data key to `new_key_id` (default: the active key), chunks untouched.

    `keystore` must hold both the file's current key and the new one. Returns False when the
    file already uses the new key (so a rotation can be re-run and resumed).
    """
    target = keystore.active_id if new_key_id is None else new_key_id
    fd = os.open(path, os.O_RDWR)
    try:
        header = _parse(os.pread(fd, CHUNKS_OFFSET, 0), str(path))
        if header.key_id == target:
            return False
        data_key = keystore.unwrap(header.key_id, header.wrapped_key, header.raw)
        key_id, wrapped = keystore.wrap(data_key, header.raw, target)
        # In place, not temp file + rename. The key section is 68 bytes at offset 32, inside
        # the first 512-byte sector, which disks write atomically on power loss (NVMe
        # guarantees at least one logical block; copy-on-write file systems never tear), so a
        # crash leaves the old or the new section, and both unwrap: the old key stays in the
        # key store until a full pass has moved every file. A rename would instead copy whole
        # multi-GB model files (time, and twice the disk), and would swap the inode under a
        # writer still appending chunks to the file, losing its data; in place it is harmless.
        os.pwrite(fd, key_id + wrapped, HEADER_SIZE)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True
