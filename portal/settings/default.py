"""Settings read from the environment (CONTRACT "Processes and settings").

Embedded defaults need no server: SQLite and Celery's filesystem transport
under var/, and a SECRET_KEY (and, for a DEBUG run, FIELD_ENCRYPTION_KEYS) generated
there. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY and FIELD_ENCRYPTION_KEYS.
"""

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_choice, env_int, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("VIGIL_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATABASE_URL = env_str("DATABASE_URL")
EMBEDDED_DATABASE = not DATABASE_URL


def _kept_in_var(name: str, generate: Callable[[], str]) -> str:
    """Local runs only: one key per checkout, kept out of the repository."""
    key_file = VAR_DIR / name
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(generate())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not EMBEDDED_DATABASE:
        raise ImproperlyConfigured("SECRET_KEY is required when DATABASE_URL is set")
    return _kept_in_var("secret_key", lambda: secrets.token_urlsafe(50))


SECRET_KEY = _secret_key()


def _field_encryption_keys() -> list[str]:
    """Fernet keys for secrets stored encrypted (TOTP seeds), newest first: the first
    encrypts, all decrypt. Generated under var/ only for a local DEBUG run on SQLite."""
    keys = [key.strip() for key in env_str("FIELD_ENCRYPTION_KEYS").split(",") if key.strip()]
    if not keys:
        if DEBUG and EMBEDDED_DATABASE:
            keys = [_kept_in_var("field_encryption_key", lambda: Fernet.generate_key().decode())]
        else:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS is required when DEBUG is off or DATABASE_URL is set; make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            )
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe base64 bytes)"
            ) from None
    return keys


FIELD_ENCRYPTION_KEYS = _field_encryption_keys()

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    # otp_totp and otp_static stay for their migration history: verification's
    # migrations moved their plaintext seeds and codes into its own devices.
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_email",
    "django_otp.plugins.otp_static",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "auditlog",
    "audit",
    "verification",
    "policies",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Above whitenoise, so static files carry the policies too.
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "audit.context.RequestContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.session_expiry.StaffSessionExpiryMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "portal.User"
LOGIN_URL = "admin:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "portal" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES: dict[str, Any]
if EMBEDDED_DATABASE:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "vigil.sqlite3",
            # IMMEDIATE takes the write lock at BEGIN, so concurrent audit appends
            # queue up instead of failing with "database is locked" mid-transaction.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
else:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security: secure by default; a local http run sets DEBUG=1 (make run does).
HTTPS = env_bool("HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=HTTPS)
if env_bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS > 0)
if HTTPS and not SECURE_SSL_REDIRECT:
    # The operator said the TLS proxy redirects (README "Production"); the check cannot see it.
    SILENCED_SYSTEM_CHECKS = ["security.W008"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Staff sessions are short: a forgotten console must not stay open overnight.
# portal.session_expiry counts SESSION_COOKIE_AGE from the staff login and logs out after
# STAFF_SESSION_IDLE_SECONDS without a request; every session ends when the browser closes.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
STAFF_SESSION_IDLE_SECONDS = env_int("STAFF_SESSION_IDLE_SECONDS", 15 * 60, minimum=300)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# django-csp. Scripts only from our own origin, never inline. Inline styles stay allowed:
# the admin, django-auditlog's history, DRF's browsable API and Swagger UI ship <style>
# blocks and style attributes, and CSS cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],  # Swagger UI's icons are data: URIs
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
    }
}
# django-permissions-policy: no page needs a device or sensor.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}

# Email: SMTP when EMAIL_HOST is set, otherwise printed to the console.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "vigil@localhost")

SMS_BACKEND = env_choice("SMS_BACKEND", "console", ("console", "file", "webhook"))
SMS_FILE_PATH = env_str("SMS_FILE_PATH", str(VAR_DIR / "sms.jsonl"))
SMS_WEBHOOK_URL = env_str("SMS_WEBHOOK_URL")
SMS_WEBHOOK_SECRET = env_str("SMS_WEBHOOK_SECRET")
if SMS_BACKEND == "webhook" and not (SMS_WEBHOOK_URL and SMS_WEBHOOK_SECRET):
    # Unsigned requests would let anyone who reaches the gateway forge them.
    raise ImproperlyConfigured("SMS_BACKEND=webhook needs SMS_WEBHOOK_URL and SMS_WEBHOOK_SECRET")

# Verification. Links in messages point at PORTAL_URL.
PORTAL_URL = env_str("PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")
SECURITY_ADMIN_GROUP = "Security admin"
# NIST SP 800-63B 5.2.2 allows up to 100 consecutive failures; we stop far earlier.
VERIFICATION_SUBJECT_FAILURE_LIMIT = env_int("VERIFICATION_SUBJECT_FAILURE_LIMIT", 10, minimum=1)
VERIFICATION_AGENT_CASES_PER_HOUR_FLAG = env_int("VERIFICATION_AGENT_CASES_PER_HOUR_FLAG", 10, minimum=1)
VERIFICATION_PUSH_LIMIT_PER_10_MIN = env_int("VERIFICATION_PUSH_LIMIT_PER_10_MIN", 3, minimum=1)
VERIFICATION_REPORT_HOLD_MINUTES = env_int("VERIFICATION_REPORT_HOLD_MINUTES", 60, minimum=1)
# Past VERIFICATION_SUBJECT_FAILURE_LIMIT the subject is put on hold: no challenge goes out or passes.
VERIFICATION_FAILURE_HOLD_MINUTES = env_int("VERIFICATION_FAILURE_HOLD_MINUTES", 60, minimum=1)
VERIFICATION_CASE_OPEN_MINUTES = env_int("VERIFICATION_CASE_OPEN_MINUTES", 30, minimum=1)
VERIFICATION_REDISPATCH_AFTER_SECONDS = env_int("VERIFICATION_REDISPATCH_AFTER_SECONDS", 30, minimum=5)
# How often beat looks for challenges, notices and webhooks that never left.
VERIFICATION_SWEEP_SECONDS = env_int("VERIFICATION_SWEEP_SECONDS", 30, minimum=1)
# A worker's claim on what it is sending: longer than EMAIL_TIMEOUT and the 5 s webhook
# timeout, so a live but slow send is never repeated by another worker.
_LEASE_MINIMUM = max(EMAIL_TIMEOUT, 5) + 1
VERIFICATION_DELIVERY_LEASE_SECONDS = env_int(
    "VERIFICATION_DELIVERY_LEASE_SECONDS", max(60, _LEASE_MINIMUM), minimum=_LEASE_MINIMUM
)
# Lost-factor path: the least cooling-off, whatever the tier says (never a weaker path).
VERIFICATION_FALLBACK_COOLING_OFF_HOURS = env_int("VERIFICATION_FALLBACK_COOLING_OFF_HOURS", 24, minimum=1)
# Executors for IdP automation (role_escalation, data_export): signed POST.
ACTION_WEBHOOK_URL = env_str("ACTION_WEBHOOK_URL")
ACTION_WEBHOOK_SECRET = env_str("ACTION_WEBHOOK_SECRET")

# Access requests and grants.
APPROVER_GROUP = "Approver"
ACCESS_REQUEST_WAIT_HOURS = env_int("ACCESS_REQUEST_WAIT_HOURS", 72, minimum=1)
GRANT_SWEEP_SECONDS = env_int("GRANT_SWEEP_SECONDS", 60, minimum=5)
PROVISIONING_WEBHOOK_SECRET = env_str("PROVISIONING_WEBHOOK_SECRET")
# Group permissions an entitlement grants count only while a grant is active now.
AUTHENTICATION_BACKENDS = ["policies.backends.GrantAwareModelBackend"]

# Celery: Redis when REDIS_URL is set, else the filesystem transport under var/.
REDIS_URL = env_str("REDIS_URL")
# A message taken by a worker that died unacknowledged (acks_late) is redelivered after
# this many seconds; keep it above the longest task run and retry countdown.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
# A task held for a later ETA counts as taken too, so a far deadline (a grant's start or
# end) is reached in hops shorter than the visibility timeout, never redelivered early.
CELERY_ETA_HOP_SECONDS = max(CELERY_VISIBILITY_TIMEOUT // 2, 1)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
else:
    BROKER_DIR = VAR_DIR / "broker"
    for _folder in ("queue", "processed"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
# Throttles and login lockouts count in this cache, so every web process must share it:
# Redis in production (its own database, so a cache clear never drops queued tasks),
# else files under var/, shared by the processes of one machine.
_broker = urlsplit(REDIS_URL)
_cache_db = "/2" if _broker.path.strip("/") == "1" else "/1"
CACHE_URL = env_str("CACHE_URL", _broker._replace(path=_cache_db).geturl() if REDIS_URL else "")
if CACHE_URL:
    # Forgetful, not failing, while Redis is away (portal.cache); a hung Redis costs a second.
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.ForgetfulRedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.ErrorResponsesAutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    # The usual three, refusing NUL characters (portal.api.parsing).
    "DEFAULT_PARSER_CLASSES": [
        "portal.api.parsing.JSONParser",
        "portal.api.parsing.FormParser",
        "portal.api.parsing.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # Per caller, and per subject whoever calls (many agents or tokens aimed at one person
    # share one budget): portal.api.throttles. "N/second|minute|hour|day".
    "DEFAULT_THROTTLE_RATES": {
        "challenge_create": env_rate("THROTTLE_CHALLENGE_CREATE", "60/hour"),
        "challenge_create_subject": env_rate("THROTTLE_CHALLENGE_CREATE_SUBJECT", "20/hour"),
        "challenge_answer": env_rate("THROTTLE_CHALLENGE_ANSWER", "30/minute"),
        "challenge_answer_subject": env_rate("THROTTLE_CHALLENGE_ANSWER_SUBJECT", "30/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vigil API",
    "DESCRIPTION": "Out-of-band verification for service-desk actions and time-boxed access.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from validator.swagger.io: it would send it our schema's address.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    # Path ids (portal.api.urls.IdConverter): at most 18 digits.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}},
    # Error responses: portal.api.schema.
}

# Sign-in (admin and /me/): this many failures within the lockout period, per username or
# per client address, and the form refuses every attempt for LOGIN_LOCKOUT_MINUTES.
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 5, minimum=1)
LOGIN_FAILURES_PER_IP = env_int("LOGIN_FAILURES_PER_IP", 20, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1)

OTP_TOTP_ISSUER = "Vigil"
# django-otp's own admins then show no TOTP seed or backup code.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
OTP_EMAIL_TOKEN_VALIDITY = 300

AUDITLOG_INCLUDE_ALL_MODELS = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
