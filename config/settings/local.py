"""Embedded default: one machine, SQLite and secrets in the data directory."""

from config.secrets import new_audit_key, new_master_key, new_secret_key, read_or_create

from .base import *  # noqa: F403
from .base import DATA_DIR, env

SECRET_KEY = env("SECRET_KEY", default="") or read_or_create(
    DATA_DIR / "keys" / "secret_key", new_secret_key
)
if not (HEARTH_MASTER_KEY or HEARTH_MASTER_KEY_FILE):  # noqa: F405
    HEARTH_MASTER_KEY_FILE = str(DATA_DIR / "keys" / "master.key")
    read_or_create(DATA_DIR / "keys" / "master.key", new_master_key)
if not (HEARTH_AUDIT_KEY or HEARTH_AUDIT_KEY_FILE):  # noqa: F405
    HEARTH_AUDIT_KEY_FILE = str(DATA_DIR / "keys" / "audit.key")
    read_or_create(DATA_DIR / "keys" / "audit.key", new_audit_key)

# The launcher writes the URL of the Redis it started, so `manage.py` commands run beside a
# running platform find it too.
_redis_url_file = DATA_DIR / "run" / "redis.url"
if not env("REDIS_URL", default="") and _redis_url_file.exists():
    REDIS_URL = _redis_url_file.read_text().strip()
    CELERY_BROKER_URL = CELERY_RESULT_BACKEND = REDIS_URL

# Static files straight from the app folders: no collectstatic step on a developer machine.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
