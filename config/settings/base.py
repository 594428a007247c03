"""Settings shared by every environment. Values come from the environment (django-environ)."""

from datetime import timedelta
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

DATA_DIR = Path(env("HEARTH_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = [h.strip() for h in env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env.list("CSRF_TRUSTED_ORIGINS", default=[])]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "accounts",
    "audit",
    "datasets_app",
    "jobs",
]

MIDDLEWARE = [
    "audit.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused for too many failures into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "accounts.context_processors.navigation",
            ],
        },
    },
]


def _database(url: str) -> dict:
    db = environ.Env.db_url_config(url)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # The web server and the worker write concurrently: WAL + IMMEDIATE transactions + a
        # busy timeout turn "database is locked" errors into short waits.
        db["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    else:
        db.setdefault("CONN_MAX_AGE", 60)
        db["CONN_HEALTH_CHECKS"] = True
    return db


DATABASE_URL = env("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'hearth.sqlite3'}")
DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses logins locked out for repeated failures before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser" row: anonymous visitors get nothing, not a shared identity.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = env.int("HEARTH_SESSION_SECONDS", default=8 * 3600)
SESSION_SAVE_EVERY_REQUEST = True  # inactivity timeout, not absolute

# Login throttling (django-axes): a user name is locked out from one address after N failures,
# for the cool-off time. Other users, and the same user elsewhere, are not affected.
AXES_FAILURE_LIMIT = env.int("HEARTH_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("HEARTH_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A fixed cool-off from the lockout; attempts during it are refused without extending it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"  # the address the audit log records
AXES_VERBOSE = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("HEARTH_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Hearth
HEARTH_STORAGE_DIR = Path(env("HEARTH_STORAGE_DIR", default=str(DATA_DIR / "storage")))
HEARTH_MODELS_DIR = Path(env("HEARTH_MODELS_DIR", default=str(DATA_DIR / "models")))
HEARTH_MASTER_KEY = env("HEARTH_MASTER_KEY", default="")
HEARTH_MASTER_KEY_FILE = env("HEARTH_MASTER_KEY_FILE", default="")
HEARTH_WORKER_HEARTBEAT_SECONDS = env.int("HEARTH_WORKER_HEARTBEAT_SECONDS", default=10)
HEARTH_WORKER_STALE_SECONDS = env.int("HEARTH_WORKER_STALE_SECONDS", default=30)
# Training jobs: an attempt whose lease is not renewed for this long lost its worker.
HEARTH_JOB_LEASE_SECONDS = env.int("HEARTH_JOB_LEASE_SECONDS", default=30)
HEARTH_CANCEL_GRACE_SECONDS = 15
HEARTH_REDISPATCH_SECONDS = 60
HEARTH_TRAINING_TIME_LIMIT = env.int("HEARTH_TRAINING_TIME_LIMIT", default=7 * 24 * 3600)
HEARTH_TOKEN_DEFAULT_DAYS = env.int("HEARTH_TOKEN_DEFAULT_DAYS", default=90)
HEARTH_TOKEN_MAX_DAYS = env.int("HEARTH_TOKEN_MAX_DAYS", default=365)
HEARTH_MAX_UPLOAD_BYTES = env.int("HEARTH_MAX_UPLOAD_BYTES", default=2 * 1024**3)
HEARTH_PREVIEW_ROWS = 20
# Soft-deleted datasets stay restorable this long, then their files are purged.
HEARTH_DATASET_RETENTION_DAYS = env.int("HEARTH_DATASET_RETENTION_DAYS", default=30)
# Audit trail: the key of its hash chain (HMAC-SHA256), kept out of the database so that
# database write access alone cannot rewrite history; and how long events stay in the database
# before they move to encrypted archives (never less than 180 days: audit.retention).
HEARTH_AUDIT_KEY = env("HEARTH_AUDIT_KEY", default="")
HEARTH_AUDIT_KEY_FILE = env("HEARTH_AUDIT_KEY_FILE", default="")
HEARTH_AUDIT_RETENTION_DAYS = env.int("HEARTH_AUDIT_RETENTION_DAYS", default=365)
if HEARTH_AUDIT_RETENTION_DAYS < 180:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"HEARTH_AUDIT_RETENTION_DAYS must be at least 180 (got {HEARTH_AUDIT_RETENTION_DAYS})."
    )
HEARTH_AUDIT_ARCHIVE_DIR = DATA_DIR / "audit-archive"
# Playground: answers wait this long for the playground worker (requests queue, one at a time);
# the worker keeps this many models loaded. Text watermarks use HEARTH_WATERMARK_KEY, else a
# key derived from the audit key: secret per installation, never the library's default.
HEARTH_PLAYGROUND_TIMEOUT_SECONDS = env.int("HEARTH_PLAYGROUND_TIMEOUT_SECONDS", default=120)
HEARTH_PLAYGROUND_CACHE_SIZE = env.int("HEARTH_PLAYGROUND_CACHE_SIZE", default=2)
HEARTH_WATERMARK_KEY = env("HEARTH_WATERMARK_KEY", default="")

# Uploads stream in 1 MiB chunks to a private 0700 folder, never whole into memory.
FILE_UPLOAD_HANDLERS = ["datasets_app.uploads.LimitedUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 0

# Celery (config/celery.py reads every CELERY_* setting)
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True  # the database is the source of truth, not task results
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_SOFT_TIME_LIMIT = env.int("HEARTH_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("HEARTH_TASK_TIME_LIMIT", default=900)
# Long tasks: one message at a time per process, so a busy worker does not hoard queued jobs.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 12 * 3600}
CELERY_TIMEZONE = "UTC"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.StandardPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": [],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Hearth API",
    "DESCRIPTION": "Fine-tune open LLMs on your own GPUs: datasets, jobs, models, audit.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("HEARTH_LOG_LEVEL", default="INFO").upper()},
    # axes logs every successful login at INFO (the audit log has them); lockouts are WARNING.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
