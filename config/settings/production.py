"""Production: every secret from the environment; refuses to start on unsafe defaults."""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from datasets_app.crypto.keystore import KeyStore, KeyStoreError

from .base import *  # noqa: F403
from .base import (
    DEBUG,
    HEARTH_AUDIT_KEY,
    HEARTH_AUDIT_KEY_FILE,
    HEARTH_MASTER_KEY,
    HEARTH_MASTER_KEY_FILE,
    SECRET_KEY,
    env,
)

if DEBUG:
    raise ImproperlyConfigured("DEBUG must be False in production.")
if len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("SECRET_KEY must be set to a random value of 32+ characters.")
if not (HEARTH_MASTER_KEY or HEARTH_MASTER_KEY_FILE):
    raise ImproperlyConfigured(
        "Set HEARTH_MASTER_KEY or HEARTH_MASTER_KEY_FILE: datasets are encrypted at rest."
    )
try:  # the key store's own parser: a rotated key file holds several keys and comments
    if HEARTH_MASTER_KEY:
        KeyStore.from_base64(HEARTH_MASTER_KEY)
    else:
        KeyStore.from_key_file(HEARTH_MASTER_KEY_FILE)
except KeyStoreError as exc:
    raise ImproperlyConfigured(f"The master key must be 32 random bytes, base64: {exc}") from exc
if not (HEARTH_AUDIT_KEY or HEARTH_AUDIT_KEY_FILE):
    raise ImproperlyConfigured(
        "Set HEARTH_AUDIT_KEY or HEARTH_AUDIT_KEY_FILE: it keys the audit trail's hash chain."
    )
_audit_key = HEARTH_AUDIT_KEY
if not _audit_key:
    try:
        _audit_key = Path(HEARTH_AUDIT_KEY_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"Cannot read HEARTH_AUDIT_KEY_FILE: {exc}") from exc
if len(_audit_key) < 32:
    raise ImproperlyConfigured("The audit key must be a random value of 32+ characters.")
del _audit_key
for _name in ("DATABASE_URL", "REDIS_URL"):
    if not env(_name, default=""):
        raise ImproperlyConfigured(f"Set {_name}: production has no embedded database or Redis.")

SESSION_COOKIE_SECURE = env.bool("HEARTH_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("HEARTH_HSTS_SECONDS", default=0)
if env.bool("HEARTH_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
