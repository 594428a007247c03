"""Test settings: a throwaway data directory, fast hashing, SQLite unless DATABASE_URL is set."""

import os
import tempfile
from pathlib import Path

# Never the user's real data directory; worker processes started by tests inherit this one.
_data_dir = os.environ.setdefault("HEARTH_TEST_DATA_DIR", tempfile.mkdtemp(prefix="hearth-test-"))
os.environ["HEARTH_DATA_DIR"] = _data_dir

from .base import *  # noqa: E402, F403
from .base import DATA_DIR, _database, env  # noqa: E402

SECRET_KEY = "test-only-secret-key-not-for-production-" + "x" * 20
HEARTH_MASTER_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31, tests only
HEARTH_AUDIT_KEY = "test-only-audit-key-not-for-production-" + "x" * 20
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A file-backed SQLite test database, so a real worker process can open the same database.
DATABASES = {
    "default": _database(env("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(Path(DATA_DIR) / "test_db.sqlite3")}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
