"""Production: every secret from the environment; refuses to start on unsafe defaults."""

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

SESSION_COOKIE_SECURE = env.bool("HEARTH_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("HEARTH_HSTS_SECONDS", default=0)
if env.bool("HEARTH_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
