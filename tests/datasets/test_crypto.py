"""Encryption at rest: the chunked AES-256-GCM format, the key store and key rotation."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from datasets_app.crypto import (
    CHUNKS_OFFSET,
    HEADER_SIZE,
    KEY_SECTION_SIZE,
    DecryptingReader,
    DecryptionError,
    EncryptedWriter,
    KeyStore,
    KeyStoreError,
    NotEncryptedError,
    UnknownKeyError,
    decrypt_to_path,
    encrypt_file,
    key_id_of,
    keystore_from_settings,
    open_decrypted,
    read_header,
    rewrap,
)

CHUNK = 64
RECORD = CHUNK + 16  # one full chunk on disk: ciphertext + GCM tag
MARKER = "PATIENT-MARKER-患者张三-4111111111111111"


def new_key() -> bytes:
    return os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def store() -> KeyStore:
    return KeyStore([new_key()])


def encrypt(data: bytes, store: KeyStore, chunk_size: int = CHUNK, pieces: int = 1) -> bytes:
    """Encrypt `data`, written in `pieces` random-sized writes."""
    out = io.BytesIO()
    cuts = sorted(random.randint(0, len(data)) for _ in range(pieces - 1))
    with EncryptedWriter(out, store, chunk_size=chunk_size) as writer:
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            writer.write(data[start:end])
    return out.getvalue()


def decrypt(blob: bytes, store: KeyStore) -> bytes:
    return DecryptingReader(io.BytesIO(blob), store).read()


# -- round trips ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5, 10_000]
)
@pytest.mark.parametrize("pieces", [1, 7])
def test_round_trip(store, size, pieces):
    data = os.urandom(size)
    blob = encrypt(data, store, pieces=pieces)
    assert decrypt(blob, store) == data
    # Whole chunks, plus one final chunk holding the rest (an empty one only for empty data).
    chunks = max(1, -(-size // CHUNK))
    assert len(blob) == CHUNKS_OFFSET + size + 16 * chunks


def test_exactly_one_chunk_is_a_single_final_chunk(store):
    blob = encrypt(os.urandom(CHUNK), store)
    assert len(blob) == CHUNKS_OFFSET + RECORD


def test_several_mib_with_every_read_method(store):
    data = os.urandom(3 * 1024 * 1024 + 17)
    blob = encrypt(data, store, chunk_size=64 * 1024, pieces=50)
    assert decrypt(blob, store) == data
    assert b"".join(DecryptingReader(io.BytesIO(blob), store).iter_chunks()) == data

    reader = DecryptingReader(io.BytesIO(blob), store)
    parts, sizes = [], [1, 1000, 70_000, 3, 65_536]
    while part := reader.read(sizes[len(parts) % len(sizes)]):
        parts.append(part)
    assert b"".join(parts) == data

    reader, got, buf = DecryptingReader(io.BytesIO(blob), store), bytearray(), bytearray(99_999)
    while n := reader.readinto(buf):
        got += buf[:n]
    assert got == data

    reader = DecryptingReader(io.BytesIO(blob), store)
    head = reader.read(10)
    assert head + b"".join(reader.iter_chunks()) == data


def test_reads_from_a_stream_that_returns_short_reads(store):
    class Trickle(io.RawIOBase):
        """A pipe-like stream: at most 7 bytes per read."""

        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            chunk = self._data.read(min(7, len(b)))
            b[: len(chunk)] = chunk
            return len(chunk)

    data = os.urandom(5 * CHUNK)  # a multiple of the chunk size: the last-chunk look-ahead
    assert DecryptingReader(Trickle(encrypt(data, store)), store).read() == data


def test_text_through_textiowrapper_with_chinese(store):
    text = "".join(f"第{i}行：病人姓名张三，诊断高血压。🙂\n" for i in range(500))
    # 7-byte chunks split most 3- and 4-byte UTF-8 characters across chunk boundaries.
    blob = encrypt(text.encode("utf-8"), store, chunk_size=7)
    with io.TextIOWrapper(DecryptingReader(io.BytesIO(blob), store), encoding="utf-8") as f:
        lines = list(f)
    assert "".join(lines) == text
    assert lines[42] == "第42行：病人姓名张三，诊断高血压。🙂\n"


def test_writer_tracks_plaintext_size_and_sha256(store):
    data = os.urandom(12_345)
    with EncryptedWriter(io.BytesIO(), store, chunk_size=CHUNK) as writer:
        for start in range(0, len(data), 1000):
            writer.write(data[start : start + 1000])
            assert writer.plaintext_size == min(start + 1000, len(data))
    assert writer.sha256 == hashlib.sha256(data).hexdigest()
    assert writer.key_id == store.active_id


def test_writer_interrupted_by_an_exception_leaves_an_undecryptable_file(store):
    out = io.BytesIO()
    with pytest.raises(RuntimeError), EncryptedWriter(out, store, chunk_size=CHUNK) as writer:
        writer.write(os.urandom(3 * CHUNK))
        raise RuntimeError("upload aborted")
    with pytest.raises(DecryptionError, match="truncated"):
        decrypt(out.getvalue(), store)


def test_same_plaintext_encrypts_differently(store):
    data = b"x" * 100
    assert encrypt(data, store)[CHUNKS_OFFSET:] != encrypt(data, store)[CHUNKS_OFFSET:]


def test_files_round_trip_with_mode_0600(store, tmp_path):
    data = os.urandom(2 * 1024 * 1024 + 3)
    src, enc, dec = tmp_path / "plain.bin", tmp_path / "data.hrth", tmp_path / "work" / "x.bin"
    src.write_bytes(data)
    dec.parent.mkdir()
    info = encrypt_file(src, enc, store)
    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert decrypt_to_path(enc, dec, store) == info
    assert dec.read_bytes() == data
    assert oct(enc.stat().st_mode & 0o777) == "0o600"
    assert oct(dec.stat().st_mode & 0o777) == "0o600"
    with open_decrypted(enc, store) as reader:
        assert reader.read() == data
    header = read_header(enc)
    assert (header.key_id, header.chunk_size) == (store.active_id, 1024 * 1024)
    assert len(header.file_id) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.hrth", "plain.bin", "work"]


def test_decrypt_to_path_leaves_nothing_on_failure(store, tmp_path):
    enc = tmp_path / "data.hrth"
    blob = encrypt(os.urandom(5 * CHUNK), store)
    enc.write_bytes(blob[:-RECORD])
    (tmp_path / "work").mkdir()
    with pytest.raises(DecryptionError, match="truncated"):
        decrypt_to_path(enc, tmp_path / "work" / "x.bin", store)
    assert list((tmp_path / "work").iterdir()) == []


# -- tampering --------------------------------------------------------------------------------
def flip(blob: bytes, offset: int) -> bytes:
    return blob[:offset] + bytes([blob[offset] ^ 0x01]) + blob[offset + 1 :]


def chunk(blob: bytes, i: int) -> bytes:
    return blob[CHUNKS_OFFSET + i * RECORD : CHUNKS_OFFSET + (i + 1) * RECORD]


@pytest.fixture
def blob(store) -> bytes:
    """Three full chunks and a final short one."""
    return encrypt(os.urandom(3 * CHUNK + 10), store)


def test_bit_flip_in_a_chunk(store, blob):
    with pytest.raises(DecryptionError, match=r"chunk 1 of .* failed authentication"):
        decrypt(flip(blob, CHUNKS_OFFSET + RECORD + 5), store)
    with pytest.raises(DecryptionError, match=r"chunk 3 .* failed authentication"):
        decrypt(flip(blob, len(blob) - 1), store)  # the final chunk's tag


@pytest.mark.parametrize("offset", range(HEADER_SIZE))
def test_bit_flip_anywhere_in_the_fixed_header(store, blob, offset):
    with pytest.raises(DecryptionError):
        decrypt(flip(blob, offset), store)


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (0, "not a Hearth encrypted file"),
        (4, "format version"),
        (12, "header or its wrapped data key .* failed authentication"),  # nonce prefix
        (20, "header or its wrapped data key .* failed authentication"),  # file id
    ],
)
def test_header_edit_messages(store, blob, offset, message):
    with pytest.raises(DecryptionError, match=message):
        decrypt(flip(blob, offset), store)


def test_not_encrypted(store):
    with pytest.raises(NotEncryptedError, match="not a Hearth encrypted file"):
        decrypt(b"id,name\n1,Zhang San\n", store)


@pytest.mark.parametrize("offset", range(HEADER_SIZE + 8, CHUNKS_OFFSET))
def test_bit_flip_in_the_wrapped_key(store, blob, offset):
    with pytest.raises(DecryptionError, match=r"wrapped data key .* failed authentication"):
        decrypt(flip(blob, offset), store)


def test_edited_key_id_is_an_unknown_key(store, blob):
    with pytest.raises(UnknownKeyError, match="which is not in the key store"):
        decrypt(flip(blob, HEADER_SIZE), store)


def test_truncation_dropping_the_last_chunk(store, blob):
    with pytest.raises(DecryptionError, match="truncated: it ends after chunk 2"):
        decrypt(blob[: CHUNKS_OFFSET + 3 * RECORD], store)
    with pytest.raises(DecryptionError, match="truncated: it ends after chunk 0"):
        decrypt(blob[: CHUNKS_OFFSET + RECORD], store)


@pytest.mark.parametrize(
    ("length", "message"),
    [
        (CHUNKS_OFFSET + RECORD + 30, "chunk 1 .* failed authentication"),  # mid-chunk
        (CHUNKS_OFFSET + RECORD + 10, "truncated inside chunk 1"),  # shorter than a tag
        (CHUNKS_OFFSET, "truncated: it has no chunks"),
        (CHUNKS_OFFSET - 1, "truncated inside its 100-byte header"),
        (10, "truncated inside its 100-byte header"),
    ],
)
def test_truncation_cutting_mid_way(store, blob, length, message):
    with pytest.raises(DecryptionError, match=message):
        decrypt(blob[:length], store)


def test_empty_file_without_its_final_chunk_is_truncated(store):
    with pytest.raises(DecryptionError, match="no chunks"):
        decrypt(encrypt(b"", store)[:CHUNKS_OFFSET], store)


def test_chunk_swap(store, blob):
    swapped = (
        blob[:CHUNKS_OFFSET] + chunk(blob, 1) + chunk(blob, 0) + blob[CHUNKS_OFFSET + 2 * RECORD :]
    )
    with pytest.raises(DecryptionError, match=r"chunk 0 .* failed authentication"):
        decrypt(swapped, store)


def test_chunk_duplication(store, blob):
    end = CHUNKS_OFFSET + 2 * RECORD
    duplicated = blob[:end] + chunk(blob, 1) + blob[end:]
    with pytest.raises(DecryptionError, match=r"chunk 2 .* failed authentication"):
        decrypt(duplicated, store)


def test_data_appended_after_the_final_chunk(store, blob):
    with pytest.raises(DecryptionError, match=r"chunk 3 .* failed authentication"):
        decrypt(blob + b"\0" * 200, store)


def test_chunks_transplanted_from_another_file_with_the_same_key(store, blob):
    other = encrypt(os.urandom(3 * CHUNK + 10), store)
    with pytest.raises(DecryptionError, match=r"chunk 0 .* failed authentication"):
        decrypt(blob[:CHUNKS_OFFSET] + other[CHUNKS_OFFSET:], store)


def test_wrong_master_key(store, blob):
    other = KeyStore([new_key()])
    with pytest.raises(UnknownKeyError) as info:
        decrypt(blob, other)
    assert str(info.value) == (
        f"file was encrypted with master key {store.active_id.hex()}, which is not in the key "
        f"store (it holds {other.active_id.hex()})"
    )


def test_verified_chunks_stream_before_the_damage_is_reached(store):
    data = os.urandom(4 * CHUNK)
    blob = encrypt(data, store)
    reader = DecryptingReader(io.BytesIO(flip(blob, CHUNKS_OFFSET + 2 * RECORD)), store)
    chunks = reader.iter_chunks()
    assert next(chunks) + next(chunks) == data[: 2 * CHUNK]
    with pytest.raises(DecryptionError, match="chunk 2"):
        next(chunks)


# -- key store --------------------------------------------------------------------------------
def test_key_file_active_key_first_comments_ignored(tmp_path):
    new, old = new_key(), new_key()
    path = tmp_path / "master.key"
    path.write_text(f"# rotated\n\n{b64(new)}\n# older\n  {b64(old)}  \n{b64(new)}\n")
    ks = KeyStore.from_key_file(path)
    assert ks.active_id == key_id_of(new) == hashlib.sha256(new).digest()[:8]
    assert ks.key_ids == [key_id_of(new), key_id_of(old)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64 at all!\n", "line 1 is not valid base64"),
        (f"# c\n{b64(b'x' * 16)}\n", "line 2 decodes to 16 bytes; a master key must be 32"),
        ("# only a comment\n\n", "holds no master key"),
    ],
)
def test_key_file_validation(tmp_path, text, message):
    path = tmp_path / "master.key"
    path.write_text(text)
    with pytest.raises(KeyStoreError, match=message):
        KeyStore.from_key_file(path)


def test_missing_key_file(tmp_path):
    with pytest.raises(KeyStoreError, match="does not exist"):
        KeyStore.from_key_file(tmp_path / "nope.key")


def test_single_env_value_validation():
    with pytest.raises(KeyStoreError, match="HEARTH_MASTER_KEY decodes to 9 bytes"):
        KeyStore.from_base64(b64(b"too-short"))


def test_keystore_from_settings(settings, tmp_path):
    env_key, file_key = new_key(), new_key()
    path = tmp_path / "master.key"
    path.write_text(b64(file_key) + "\n")
    settings.HEARTH_MASTER_KEY, settings.HEARTH_MASTER_KEY_FILE = b64(env_key), str(path)
    assert keystore_from_settings().active_id == key_id_of(env_key)  # as production does
    settings.HEARTH_MASTER_KEY = ""
    assert keystore_from_settings().active_id == key_id_of(file_key)
    settings.HEARTH_MASTER_KEY_FILE = ""
    with pytest.raises(KeyStoreError, match="set HEARTH_MASTER_KEY or HEARTH_MASTER_KEY_FILE"):
        keystore_from_settings()


def test_derive():
    old, new = new_key(), new_key()
    ks, rotated = KeyStore([old]), KeyStore([new, old])
    derived = ks.derive("pseudonym", b"dataset:1")
    assert len(derived) == 32
    assert ks.derive("pseudonym", b"dataset:1") == derived
    assert ks.derive("pseudonym", b"dataset:2") != derived
    assert ks.derive("other", b"dataset:1") != derived
    assert len(ks.derive("pseudonym", b"dataset:1", length=16)) == 16
    assert rotated.derive("pseudonym", b"dataset:1") != derived
    assert rotated.derive("pseudonym", b"dataset:1", key_id=key_id_of(old)) == derived
    assert old not in derived and new not in derived


# -- rewrap -----------------------------------------------------------------------------------
def test_rewrap_changes_only_the_key_section(tmp_path):
    old, new = new_key(), new_key()
    data = os.urandom(5 * 1024 * 1024 + 1)
    src, enc = tmp_path / "p", tmp_path / "e.hrth"
    src.write_bytes(data)
    encrypt_file(src, enc, KeyStore([old]), chunk_size=256 * 1024)
    before = enc.read_bytes()

    rotated = KeyStore([new, old])
    assert rewrap(enc, rotated) is True
    after = enc.read_bytes()
    assert after[:HEADER_SIZE] == before[:HEADER_SIZE]
    assert after[CHUNKS_OFFSET:] == before[CHUNKS_OFFSET:]
    assert after[HEADER_SIZE:CHUNKS_OFFSET] != before[HEADER_SIZE:CHUNKS_OFFSET]
    assert len(after[HEADER_SIZE:CHUNKS_OFFSET]) == KEY_SECTION_SIZE
    assert read_header(enc).key_id == key_id_of(new)

    with open_decrypted(enc, KeyStore([new])) as reader:
        assert reader.read() == data
    with pytest.raises(UnknownKeyError, match=key_id_of(new).hex()):
        open_decrypted(enc, KeyStore([old]))
    assert rewrap(enc, rotated) is False  # already on the new key
    assert enc.read_bytes() == after


def test_rewrap_to_an_unknown_key(store, tmp_path):
    enc = tmp_path / "e.hrth"
    enc.write_bytes(encrypt(b"abc", store))
    with pytest.raises(UnknownKeyError):
        rewrap(enc, store, key_id_of(new_key()))


# -- rotate_keys ------------------------------------------------------------------------------
@pytest.fixture
def site(settings, tmp_path):
    """A key file with one key, and encrypted files under tmp storage and models folders."""
    storage, models, keys = tmp_path / "storage", tmp_path / "models", tmp_path / "keys"
    for folder in (storage / "datasets" / "7", models / "m1", keys):
        folder.mkdir(parents=True)
    old = new_key()
    key_file = keys / "master.key"
    key_file.write_text(b64(old) + "\n")
    settings.HEARTH_STORAGE_DIR, settings.HEARTH_MODELS_DIR = storage, models
    settings.HEARTH_MASTER_KEY, settings.HEARTH_MASTER_KEY_FILE = "", str(key_file)

    plain = {
        storage / "datasets" / "7" / "v1.hrth": f"id,name\n1,{MARKER}\n".encode() * 2000,
        storage / "datasets" / "7" / "v2.hrth": MARKER.encode() * 3,
        models / "m1" / "model.safetensors.hrth": os.urandom(300_000) + MARKER.encode(),
    }
    ks = KeyStore([old])
    for path, data in plain.items():
        path.write_bytes(encrypt(data, ks, chunk_size=4096))
    (storage / "README.txt").write_text("not encrypted, no secrets\n")
    return {"old": old, "key_file": key_file, "plain": plain, "root": tmp_path}


def run(*args: str, stdin: str | None = None) -> str:
    out = io.StringIO()
    extra = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command("rotate_keys", *args, stdout=out, stderr=io.StringIO(), **extra)
    return out.getvalue()


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def assert_all_decrypt(site) -> None:
    ks = keystore_from_settings()
    for path, data in site["plain"].items():
        with open_decrypted(path, ks) as reader:
            assert reader.read() == data


def test_rotate_keys_end_to_end(site):
    before = snapshot(site["root"])
    output = run()
    ks = keystore_from_settings()
    assert len(ks) == 2 and ks.key_ids[1] == key_id_of(site["old"])  # prepended, old kept
    new_id = ks.active_id.hex()
    assert f"Added master key {new_id}" in output
    assert f"re-wrapped: 3, already on {new_id}: 0, failed: 0, not encrypted: 1" in output
    assert oct(site["key_file"].stat().st_mode & 0o777) == "0o600"

    after = snapshot(site["root"])
    for path in site["plain"]:
        assert read_header(path).key_id == ks.active_id
        assert after[path][CHUNKS_OFFSET:] == before[path][CHUNKS_OFFSET:]
    assert_all_decrypt(site)
    # The only files rotate_keys created are the lock file; the key file changed.
    assert set(after) - set(before) == {site["key_file"].with_name("master.key.lock")}

    # Plaintext never lands on disk: rotation never decrypts contents.
    for path, content in after.items():
        for marker in (MARKER.encode("utf-8"), MARKER.encode("utf-16-le")):
            assert marker not in content, path

    again = run("--resume")
    assert f"re-wrapped: 0, already on {new_id}: 3" in again
    assert snapshot(site["root"]) == after


def test_rotate_keys_dry_run_writes_nothing(site):
    before = snapshot(site["root"])
    output = run("--dry-run", "--retire-old")
    assert "Would add a new master key" in output
    assert "would re-wrap: 3, already on the new key: 0, failed: 0, not encrypted: 1" in output
    assert f"Would retire master key(s): {key_id_of(site['old']).hex()}." in output
    assert snapshot(site["root"]) == before


def test_rotate_keys_resumes_an_interrupted_rotation(site, tmp_path):
    new = new_key()
    new_file = tmp_path / "new.key"
    new_file.write_text(b64(new) + "\n")
    # The key was added and one file re-wrapped before the run died.
    site["key_file"].write_text(f"{b64(new)}\n{b64(site['old'])}\n")
    first = next(iter(site["plain"]))
    assert rewrap(first, keystore_from_settings())

    output = run("--new-key-file", str(new_file), "--dry-run")
    assert f"Re-wrapping to the active master key {key_id_of(new).hex()}" in output
    assert "would re-wrap: 2, already on" in output

    output = run("--new-key-file", str(new_file))
    assert "re-wrapped: 2, already on" in output and ": 1, failed: 0" in output
    assert keystore_from_settings().key_ids == [key_id_of(new), key_id_of(site["old"])]
    assert_all_decrypt(site)


def test_rotate_keys_from_stdin_then_retire_old(site):
    new = new_key()
    output = run("--new-key-stdin", "--retire-old", stdin=f"# from the vault\n{b64(new)}\n")
    assert f"Added master key {key_id_of(new).hex()}" in output
    assert f"Retired master key(s): {key_id_of(site['old']).hex()}." in output
    assert keystore_from_settings().key_ids == [key_id_of(new)]
    assert b64(site["old"]) not in site["key_file"].read_text()
    assert_all_decrypt(site)
    assert "No key to retire." in run("--resume", "--retire-old")


def test_rotate_keys_resume_catches_files_written_with_the_old_key(site):
    """A process that loaded the key store before the rotation may still write an old-key file;
    the old key stays until a pass has moved it."""
    run()
    late = Path(site["root"], "storage", "late.hrth")
    late.write_bytes(encrypt(b"late upload", KeyStore([site["old"]])))
    assert len(keystore_from_settings()) == 2
    output = run("--resume", "--retire-old")
    assert "re-wrapped: 1, already on" in output and "Retired master key(s)" in output
    with open_decrypted(late, keystore_from_settings()) as reader:
        assert reader.read() == b"late upload"


def test_rotate_keys_refuses_env_var_keys(site, settings):
    settings.HEARTH_MASTER_KEY = b64(new_key())
    before = snapshot(site["root"])
    with pytest.raises(CommandError, match="HEARTH_MASTER_KEY environment variable") as info:
        run()
    assert "HEARTH_MASTER_KEY_FILE" in str(info.value)
    assert snapshot(site["root"]) == before


def test_rotate_keys_rejects_a_bad_new_key(site, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text(b64(b"short") + "\n")
    with pytest.raises(CommandError, match="decodes to 5 bytes"):
        run("--new-key-file", str(bad))
    run()
    with pytest.raises(CommandError, match=r"already in .* as an older key"):
        run("--new-key-stdin", stdin=b64(site["old"]))
    assert len(keystore_from_settings()) == 2


def test_rotate_keys_reports_failures_and_retires_nothing(site):
    broken = Path(site["root"], "storage", "broken.hrth")
    broken.write_bytes(b"HRTH" + b"\0" * 20)
    with pytest.raises(
        CommandError, match=r"1 file.* could not be re-wrapped; nothing was retired"
    ):
        run("--retire-old")
    assert len(keystore_from_settings()) == 2
    assert_all_decrypt(site)
