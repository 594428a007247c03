"""Throughput of the at-rest encryption format, single process (so: per core).

    .venv/bin/python bench/crypto_throughput.py [--size-mib 256] [--chunk-mib 1] [--repeat 3]
                                                [--dir /path/on/the/storage/disk]

Encrypts and decrypts random data in memory and file to file (encrypt_file fsyncs its output,
decrypt_to_path does not), and, for reference, raw AES-256-GCM and SHA-256 on the same chunks
(the writer hashes the plaintext, so SHA-256 bounds encryption). Best of --repeat runs, in
MB/s (10**6 bytes). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from datasets_app.crypto import (
    CHUNKS_OFFSET,
    DecryptingReader,
    EncryptedWriter,
    KeyStore,
    decrypt_to_path,
    encrypt_file,
)


class MemorySink(io.RawIOBase):
    """A preallocated in-memory file: measures the format, not BytesIO's growth copies."""

    def __init__(self, size: int) -> None:
        self.view = memoryview(bytearray(size))
        self.pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:
        n = len(b)
        self.view[self.pos : self.pos + n] = b
        self.pos += n
        return n


def best_mb_s(size: int, repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return size / best / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--chunk-mib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="folder for the file-to-file runs")
    args = parser.parse_args()

    size = args.size_mib * 1024 * 1024
    chunk_size = int(args.chunk_mib * 1024 * 1024)
    data = memoryview(os.urandom(size))
    store = KeyStore([os.urandom(32)])
    aead = AESGCM(os.urandom(32))
    pieces = [data[i : i + chunk_size] for i in range(0, size, chunk_size)]

    def raw_gcm() -> None:
        for piece in pieces:
            aead.encrypt(b"\0" * 12, piece, b"h" * 32)

    def sha256() -> None:
        hashlib.sha256(data)

    sink = MemorySink(CHUNKS_OFFSET + size + 16 * len(pieces))

    def encrypt_memory() -> None:
        sink.pos = 0
        with EncryptedWriter(sink, store, chunk_size=chunk_size) as writer:
            for piece in pieces:
                writer.write(piece)

    encrypt_memory()
    blob = sink.view.tobytes()

    def decrypt_stream() -> None:
        for _ in DecryptingReader(io.BytesIO(blob), store).iter_chunks():
            pass

    def decrypt_readinto() -> None:
        reader, buf = DecryptingReader(io.BytesIO(blob), store), bytearray(chunk_size)
        while reader.readinto(buf):
            pass

    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(
        f"{args.size_mib} MiB of random data, {chunk_size / 2**20:g} MiB chunks, best of "
        f"{args.repeat}, one process"
    )
    rows = [
        ("raw AES-256-GCM, per chunk (reference)", raw_gcm),
        ("SHA-256 (reference)", sha256),
        ("encrypt, memory -> memory (+SHA-256)", encrypt_memory),
        ("decrypt, memory, iter_chunks", decrypt_stream),
        ("decrypt, memory, readinto", decrypt_readinto),
    ]
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        src, enc, dec = (Path(folder, name) for name in ("plain", "enc", "dec"))
        src.write_bytes(data)

        def decrypt_file() -> None:
            decrypt_to_path(enc, dec, store)

        rows += [
            (
                "encrypt_file, file -> file (+SHA-256, fsync)",
                lambda: encrypt_file(src, enc, store, chunk_size=chunk_size),
            ),
            ("decrypt_to_path, file -> file (+SHA-256)", decrypt_file),
        ]
        for name, work in rows:
            print(f"  {name:<46} {best_mb_s(size, args.repeat, work):>8,.0f} MB/s")


if __name__ == "__main__":
    main()
