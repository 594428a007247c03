"""Production: every secret from the environment; refuses to start on unsafe defaults."""

import base64
import binascii
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEBUG, HEARTH_MASTER_KEY, HEARTH_MASTER_KEY_FILE, SECRET_KEY, env

if DEBUG:
    raise ImproperlyConfigured("DEBUG must be False in production.")
if len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("SECRET_KEY must be set to a random value of 32+ characters.")
if not (HEARTH_MASTER_KEY or HEARTH_MASTER_KEY_FILE):
    raise ImproperlyConfigured(
        "Set HEARTH_MASTER_KEY or HEARTH_MASTER_KEY_FILE: datasets are encrypted at rest."
    )
_master = HEARTH_MASTER_KEY or (
    Path(HEARTH_MASTER_KEY_FILE).read_text().strip()
    if Path(HEARTH_MASTER_KEY_FILE).is_file()
    else ""
)
try:
    _master_ok = len(base64.b64decode(_master, validate=True)) == 32
except (binascii.Error, ValueError):
    _master_ok = False
if not _master_ok:
    raise ImproperlyConfigured("The master key must be 32 random bytes, base64-encoded.")
for _name in ("DATABASE_URL", "REDIS_URL"):
    if not env(_name, default=""):
        raise ImproperlyConfigured(f"Set {_name}: production has no embedded database or Redis.")

SESSION_COOKIE_SECURE = env.bool("HEARTH_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("HEARTH_HSTS_SECONDS", default=0)
if env.bool("HEARTH_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
