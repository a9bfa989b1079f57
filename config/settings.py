"""KioskOps settings: one module, driven by environment variables, loud on bad values.

Nothing set gives the embedded stack (PostgreSQL from a wheel, its cluster under var/postgres; a channel layer
through that PostgreSQL; a filesystem Celery broker); DATABASE_URL and REDIS_URL switch to servers of your own.
See README.md, "Configuration".
"""

import re
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("KIOSKOPS_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
_INSECURE_DEV_KEY = "django-insecure-kioskops-development-only-key-do-not-use-in-production"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", _INSECURE_DEV_KEY if DEBUG else None, required=not DEBUG)
if not DEBUG and len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("Environment variable DJANGO_SECRET_KEY must be at least 32 characters long.")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_filters",
    "django_htmx",
    "channels",
    "axes",
    "core",
    "accounts",
    "fleet",
    "incidents",
    "reconciliation",
    "parts",
    "workorders",
    "guidance",
    "analytics",
    "inspections",
    "drills",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Every error under /api/ in the API's JSON shape, whoever produced it (core/http.py).
    "core.http.ApiErrorShapeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the login page's lockout message.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
# PostgreSQL only: DATABASE_URL, or without it the embedded server whose cluster lives in var/postgres
# (config/embedded_postgres.py; `make run` and the test session start it).
DATABASE_URL = env_str("DATABASE_URL")
# 0 (a connection per request) by default: under ASGI each request runs in its own thread, and kept connections
# pile up until PostgreSQL refuses more. WSGI workers (gunicorn) should set 60.
_conn_max_age = env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0)
if DATABASE_URL:
    try:
        _default_db = dj_database_url.parse(DATABASE_URL, conn_max_age=_conn_max_age)
    except Exception as exc:  # dj-database-url raises several types for malformed URLs
        raise ImproperlyConfigured(f"Environment variable DATABASE_URL is not a valid database URL: {exc}") from exc
    if _default_db.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured("Environment variable DATABASE_URL must point at PostgreSQL (postgres://…).")
    EMBEDDED_POSTGRES = None
else:
    from config.embedded_postgres import EmbeddedPostgres

    EMBEDDED_POSTGRES = EmbeddedPostgres(VAR_DIR / "postgres")
    _default_db = {**EMBEDDED_POSTGRES.database_settings(), "CONN_MAX_AGE": _conn_max_age}
_default_db["CONN_HEALTH_CHECKS"] = True

DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, channel layer and cache when REDIS_URL is set ---------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and urlparse(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
    raise ImproperlyConfigured("Environment variable REDIS_URL must start with redis://, rediss:// or unix://.")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("KIOSKOPS_CHANNEL_PREFIX", "kioskops")},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("KIOSKOPS_CACHE_PREFIX", "kioskops"),
        }
    }
else:
    # Without Redis the web server and the Celery worker still need to talk: channels_postgres carries the events
    # through the same PostgreSQL (a message table whose trigger NOTIFYs the listening web server).
    INSTALLED_APPS.append("channels_postgres")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "core.channel_layers.PostgresLayer",
            "CONFIG": {
                **{k: v for k, v in _default_db.items() if k in {"ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT"}},
                "TIME_ZONE": None,  # read by the Django connection wrapper the layer builds its parameters with
                "prefix": env_str("KIOSKOPS_CHANNEL_PREFIX", "kioskops"),
                # A small pool per process: the web server and the worker each keep a few connections.
                "PSYCOPG_OPTIONS": {"min_size": 1, "max_size": 4},
            },
        }
    }
    # The cache holds rate-limit counters and must be shared by all processes of the web server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / "cache",
        }
    }

# --- Celery ---------------------------------------------------------------------------------------------
# Work that dies half-way is finished (docs/file-formats.md, "When a worker dies"):
# - A reconcile run carries a lease (ReconciliationRun.lease_expires_at) that the worker renews every third of
#   RECON_RUN_LEASE_S while the run lasts. The beat task reconcile_expired_runs, every RECON_LEASE_SWEEP_EVERY_S,
#   marks a run past its lease failed and queues its day again: a run whose worker was killed is re-run within
#   lease + sweep (2.5 minutes by default), whatever the broker does with the task's message.
# - Tasks are acknowledged after they ran (acks_late) and given back to the queue when the pool process running
#   them dies (reject_on_worker_lost); every task is safe to run twice.
# - On Redis, a message whose worker vanished without acknowledging it is delivered again after the visibility
#   timeout. It must exceed the longest task, or a task still running is handed to a second worker: the longest
#   is reconcile_recent_days, seven day runs of 6–13 s each for a million-line day on the bench
#   (docs/performance.md), so at most about a minute and a half; 15 minutes leaves room for days ten times larger.
#   Tasks sent with a countdown also count against it (reconcile_soon's is 5 s).
RECON_RUN_LEASE_S = env_int("KIOSKOPS_RECON_RUN_LEASE_S", 120, minimum=2)
RECON_LEASE_SWEEP_EVERY_S = env_int("KIOSKOPS_RECON_LEASE_SWEEP_EVERY_S", 30, minimum=1)
# A day with at least this many journal lines has its join of lines and ledger done in two halves on two database
# connections at once (reconciliation/sql.py, day_to_judge): a province day's 10 M lines take about half the time.
# 0 never splits.
RECON_SPLIT_JOIN_LINES = env_int("KIOSKOPS_RECON_SPLIT_JOIN_LINES", 2_000_000, minimum=0)
# Journal lines and ledger entries are partitioned by day (reconciliation/partitions.py): the hourly task keeps
# partitions from yesterday to this many days ahead.
RECON_PARTITION_DAYS_AHEAD = env_int("KIOSKOPS_RECON_PARTITION_DAYS_AHEAD", 7, minimum=1)
# Months of journal lines and ledger entries kept in the database; older months are archived to files in
# RECON_ARCHIVE_DIR and their partitions dropped (reconciliation/retention.py, `manage.py recon_archive`).
RECON_RETENTION_MONTHS = env_int("KIOSKOPS_RECON_RETENTION_MONTHS", 25, minimum=2)
RECON_ARCHIVE_DIR = Path(env_str("KIOSKOPS_RECON_ARCHIVE_DIR", str(VAR_DIR / "archive")))
BROKER_VISIBILITY_TIMEOUT_S = env_int("KIOSKOPS_CELERY_VISIBILITY_TIMEOUT_S", 15 * 60, minimum=10)
CELERY_TASK_ALWAYS_EAGER = False
# The queues (docs/scaling.md): paging work never waits behind a reconcile run or an analytics refresh.
#   critical  the incident engine, notifications and escalations, the health sweep, command expiry, the drills'
#             feeder, the work-order dispatch and self-tests: minutes count against SLA clocks
#   default   the rest of the day's work: inspections, spare parts, reminders
#   reports   reconciliation, analytics, imports and housekeeping (heartbeat purge, partitions, archives)
# Every name starts with KIOSKOPS_CELERY_QUEUE, so deployments (or tests) sharing one broker stay apart. A worker
# started without -Q (`make run`, the Procfile) takes all three; a production host runs `-Q <name>.critical` and
# `-Q <name>,<name>.reports` workers, and each queue is taken on at least two machines.
CELERY_TASK_DEFAULT_QUEUE = env_str("KIOSKOPS_CELERY_QUEUE", "celery")
TASK_QUEUES = {
    "critical": f"{CELERY_TASK_DEFAULT_QUEUE}.critical",
    "default": CELERY_TASK_DEFAULT_QUEUE,
    "reports": f"{CELERY_TASK_DEFAULT_QUEUE}.reports",
}
CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name) for name in TASK_QUEUES.values()]
# By task name; a whole module where all its tasks belong together. tests/test_celery_routing.py checks that every
# task and every beat entry lands on one of TASK_QUEUES by a route written here, not by falling through.
_TASK_QUEUE_OF = {
    "incidents.tasks.*": "critical",
    "fleet.tasks.sweep_health": "critical",
    "fleet.tasks.expire_commands": "critical",
    "drills.tasks.feed": "critical",
    "workorders.tasks.tick": "critical",
    "workorders.tasks.record_self_tests": "critical",
    "inspections.tasks.*": "default",
    "parts.tasks.*": "default",
    "drills.tasks.remind_quarterly": "default",
    "reconciliation.tasks.*": "reports",
    "analytics.tasks.*": "reports",
    "fleet.tasks.purge_old_heartbeats": "reports",
}
CELERY_TASK_ROUTES = {task: {"queue": TASK_QUEUES[queue]} for task, queue in _TASK_QUEUE_OF.items()}
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_S,
        # A message whose worker died unacknowledged goes back to its queue once past the visibility timeout, at
        # the next sweep of the unacknowledged set: every 10 s here, instead of kombu's every 100 s (10 s × a
        # throttle of 10), so a machine lost costs the visibility timeout and at most 10 s more.
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
else:
    # A real broker with no server: kombu's filesystem transport, a folder of message files.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

HEALTH_SWEEP_EVERY_S = env_int("KIOSKOPS_HEALTH_SWEEP_EVERY_S", 10, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "fleet-health-sweep": {"task": "fleet.tasks.sweep_health", "schedule": float(HEALTH_SWEEP_EVERY_S)},
    "fleet-expire-commands": {"task": "fleet.tasks.expire_commands", "schedule": 60.0},
    "fleet-heartbeat-retention": {"task": "fleet.tasks.purge_old_heartbeats", "schedule": 3600.0},
    "reconcile-expired-runs": {
        "task": "reconciliation.tasks.reconcile_expired_runs",
        "schedule": float(RECON_LEASE_SWEEP_EVERY_S),
    },
    "reconcile-partitions-ahead": {"task": "reconciliation.tasks.partitions_ahead", "schedule": 3600.0},
    "reconcile-archive-old-months": {
        "task": "reconciliation.tasks.archive_old_months",
        "schedule": crontab(hour=3, minute=15),
    },
    "reconcile-parse-stalled-journals": {
        "task": "reconciliation.tasks.parse_stalled_journals",
        "schedule": 300.0,
    },
    # The incident engine reads the fleet's change feed (also woken on commit of a flip), then recoveries.
    "incidents-engine": {"task": "incidents.tasks.engine_tick", "schedule": 5.0},
    "incidents-notifications": {"task": "incidents.tasks.send_notifications", "schedule": 10.0},
    "incidents-escalation": {"task": "incidents.tasks.escalate", "schedule": 30.0},
    # Daily, after kiosks have uploaded yesterday's journals: re-reconcile the last week.
    "reconcile-recent-days": {
        "task": "reconciliation.tasks.reconcile_recent_days",
        "schedule": crontab(hour=6, minute=30),
    },
    # Hourly, just past the hour: days with payments awaiting a kiosk's journal whose upload deadline (12:00 the
    # next working day by default) has passed are judged again.
    "reconcile-journals-due": {
        "task": "reconciliation.tasks.reconcile_journals_due",
        "schedule": crontab(minute=5),
    },
    # Onsite work orders: the dispatch policy, self-test answers, forgotten check-outs (workorders/tasks.py).
    "workorders-tick": {"task": "workorders.tasks.tick", "schedule": env_float("KIOSKOPS_WORKORDER_TICK_S", 15.0)},
    # The analytics summaries of the last days (analytics/refresh.py); older periods with `manage.py analytics_refresh`.
    "analytics-refresh-recent": {"task": "analytics.tasks.refresh_recent", "schedule": 600.0},
    # Preventive inspections: make today's due, assign, mark late and missed, run the remote checks (inspections/tasks.py).
    "inspections-tick": {"task": "inspections.tasks.tick", "schedule": 300.0},
    # Drills: the stand-in kiosks' heartbeats while a drill runs; the quarterly reminder (drills/services.py).
    "drills-feed": {"task": "drills.tasks.feed", "schedule": 10.0},
    "drills-remind-quarterly": {"task": "drills.tasks.remind_quarterly", "schedule": crontab(hour=9, minute=0)},
    # Spare parts: stock alerts (reorder, expiring, expired) and count reminders, idempotent (parts/tasks.py).
    "parts-tick": {"task": "parts.tasks.tick", "schedule": 3600.0},
}

# --- E-mail (incident notifications to an e-mail channel) --------------------------------------------------
# Printed to the console in a local demo; an SMTP server in production (KIOSKOPS_EMAIL_HOST …).
EMAIL_BACKEND = env_str(
    "KIOSKOPS_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("KIOSKOPS_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("KIOSKOPS_EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("KIOSKOPS_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_str("KIOSKOPS_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("KIOSKOPS_EMAIL_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("KIOSKOPS_EMAIL_FROM", "KioskOps <kioskops@localhost>")

# --- Auth -----------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out username+address before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one username from one address, that
# pair is locked out for the cool-off time (hours) or until an administrator unlocks it (admin: users → "unlock
# login", or the Access attempts list). A successful login resets the count.
AXES_FAILURE_LIMIT = env_int("KIOSKOPS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("KIOSKOPS_LOGIN_COOLOFF_HOURS", 1, minimum=0) or None  # 0: until unlocked
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.login_locked_out"
# Behind a reverse proxy REMOTE_ADDR is the proxy's: KIOSKOPS_PROXY_COUNT trusted proxies append to
# X-Forwarded-For, and the client's address is the one they received the request from.
PROXY_COUNT = env_int("KIOSKOPS_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "core.http.client_ip"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "landing"  # the first screen the user's role can use
LOGOUT_REDIRECT_URL = "login"

# --- Language and time ----------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# The console's front-end libraries come from npm (package.json; `make install` runs npm ci): core/staticfiles.py.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "core.staticfiles.NpmFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = VAR_DIR / "media"

# --- REST framework -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: DRF takes the challenge of the first class, so a caller with no credentials gets 401 with
    # `WWW-Authenticate: Token` (session authentication has no challenge and would make it a 403). A logged-in
    # caller without the permission still gets 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Every JSON body under one input policy (core/inputs.py): a 400 naming the field, never a 500 later.
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.PolicyJSONParser",
        "core.form_parsers.PolicyFormParser",
        "core.form_parsers.PolicyMultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Every list: ?limit= clamped to 500, malformed limit/offset a 400 (core/pagination.py).
    "DEFAULT_PAGINATION_CLASS": "core.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    # django-filter, with query values under the input policy (core/filters.py): NUL or a date outside the
    # business window is a 400 naming the parameter.
    "DEFAULT_FILTER_BACKENDS": ["core.filters.PolicyFilterBackend"],
    "EXCEPTION_HANDLER": "config.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "KioskOps API",
    "DESCRIPTION": "Device protocol for kiosks and staff API for the KioskOps console.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The whole schema (staff API included) is for logged-in users; the device protocol alone is public
    # (config/urls.py, /api/device-schema/).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SERVE_AUTHENTICATION": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every operation documents the API's error shape for its 4xx (core/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "KioskStatusEnum": "fleet.models.Kiosk.Status",
        "CommandStatusEnum": "fleet.models.RemoteCommand.Status",
        "ReconItemStateEnum": "reconciliation.models.ReconItem.State",
        "ReconItemSeverityEnum": "reconciliation.models.ReconItem.Severity",
        "ReconOutcomeEnum": "reconciliation.models.Outcome",
        "WriteOffRequestStateEnum": "reconciliation.models.WriteOffRequest.State",
        "CommandKindEnum": "fleet.models.RemoteCommand.Kind",
        "ErrorCodeSeverityEnum": "fleet.vocabulary.Severity",
        "IncidentStateEnum": "incidents.models.State",
        "IncidentSeverityEnum": "incidents.models.Severity",
        "TimelineKindEnum": "incidents.models.TimelineKind",
        "ChannelKindEnum": "incidents.models.NotificationChannel.Kind",
        "ChecklistOutcomeEnum": "incidents.models.ChecklistItem.Outcome",
        "ChecklistResultEnum": ["ok", "problem", "n/a"],
        "WorkOrderStatusEnum": "workorders.models.Status",
        "WorkOrderEventKindEnum": "workorders.models.EventKind",
        "WorkOrderChecklistOutcomeEnum": "workorders.models.ChecklistItem.Outcome",
        "WorkOrderPhotoKindEnum": "workorders.models.Photo.Kind",
        "FunctionalTestCheckEnum": "workorders.models.FunctionalTest.Check",
        "FunctionalTestResultEnum": "workorders.models.FunctionalTest.Result",
        "SyncOutcomeEnum": "workorders.models.SyncAction.Outcome",
        "PartsDepotKindEnum": "parts.models.Depot.Kind",
        "PartsMovementKindEnum": "parts.models.Movement.Kind",
        "PartsAlertKindEnum": "parts.models.Alert.Kind",
        "PartsCountStatusEnum": "parts.models.StockCount.Status",
        "DrillStatusEnum": "drills.models.Drill.Status",
        "WorkOrderPartRemovedEnum": "workorders.models.PartUsed.Removed",
        "InspectionStatusEnum": "inspections.models.Status",
        "PartsAdjustKindEnum": ["adjust", "scrap"],
    },
}

# --- KioskOps domain settings ---------------------------------------------------------------------------
KIOSKOPS = {
    # Largest heartbeat body accepted, in bytes (413 beyond).
    "DEVICE_MAX_BODY_BYTES": env_int("KIOSKOPS_DEVICE_MAX_BODY_BYTES", 16 * 1024, minimum=1024),
    # A kiosk may not send heartbeats more often than this many per minute (429 beyond).
    "DEVICE_HEARTBEATS_PER_MINUTE": env_int("KIOSKOPS_DEVICE_HEARTBEATS_PER_MINUTE", 30, minimum=1),
    # sent_at further than this from the server clock is recorded as clock skew and not trusted.
    "CLOCK_SKEW_TOLERANCE_S": env_int("KIOSKOPS_CLOCK_SKEW_TOLERANCE_S", 120, minimum=1),
    "DEFAULT_HEARTBEAT_INTERVAL_S": env_int("KIOSKOPS_DEFAULT_HEARTBEAT_INTERVAL_S", 60, minimum=5),
    "DEFAULT_GRACE_S": env_int("KIOSKOPS_DEFAULT_GRACE_S", 90, minimum=0),
    # A kiosk that changes status this many times within the window is flapping.
    "FLAP_THRESHOLD": env_int("KIOSKOPS_FLAP_THRESHOLD", 6, minimum=2),
    "FLAP_WINDOW_S": env_int("KIOSKOPS_FLAP_WINDOW_S", 1800, minimum=60),
    "HEARTBEAT_RETENTION_DAYS": env_int("KIOSKOPS_HEARTBEAT_RETENTION_DAYS", 90, minimum=1),
    "COMMAND_DEFAULT_TTL_S": env_int("KIOSKOPS_COMMAND_DEFAULT_TTL_S", 900, minimum=30),
    # Largest journal upload accepted, after gunzip, in bytes (413 beyond).
    "JOURNAL_MAX_BYTES": env_int("KIOSKOPS_JOURNAL_MAX_BYTES", 32 * 1024 * 1024, minimum=1024),
    # Key for the keyed hash that replaces ID numbers found in payer references (see reconciliation/privacy.py).
    # Keep it stable: changing it makes earlier payments unfindable by ID number.
    "PAYER_HASH_KEY": env_str("KIOSKOPS_PAYER_HASH_KEY", SECRET_KEY),
    # How heartbeats reach the database (fleet/ingest.py): "direct" (one transaction per request) or "buffered"
    # (a Redis stream that the ingest_heartbeats consumer applies in batches). Buffered needs REDIS_URL.
    "HEARTBEAT_INGEST": env_str("KIOSKOPS_HEARTBEAT_INGEST", "buffered" if REDIS_URL else "direct"),
    "HEARTBEAT_BUFFER_PREFIX": env_str("KIOSKOPS_HEARTBEAT_BUFFER_PREFIX", "kioskops:ingest"),
    # Entries the buffer keeps at most while no consumer runs (about 1 KB each); the oldest raw beats go first.
    "HEARTBEAT_BUFFER_MAX": env_int("KIOSKOPS_HEARTBEAT_BUFFER_MAX", 500_000, minimum=1000),
    "HEARTBEAT_BATCH": env_int("KIOSKOPS_HEARTBEAT_BATCH", 2000, minimum=1),
    # Incident engine (incidents/engine.py): woken on commit of a flip (beside its periodic tick), and rows of each
    # feed read per pass.
    "INCIDENT_WAKE_ON_COMMIT": env_bool("KIOSKOPS_INCIDENT_WAKE_ON_COMMIT", True),
    "INCIDENT_FEED_BATCH": env_int("KIOSKOPS_INCIDENT_FEED_BATCH", 20_000, minimum=100),
    # A mass outage: at least this many kiosks of one hall, and this share of its kiosks in service, down within
    # the window, become one parent incident for the hall.
    "MASS_OUTAGE_MIN_KIOSKS": env_int("KIOSKOPS_MASS_OUTAGE_MIN_KIOSKS", 3, minimum=2),
    "MASS_OUTAGE_SHARE": env_float("KIOSKOPS_MASS_OUTAGE_SHARE", 0.5, minimum=0.0),
    "MASS_OUTAGE_WINDOW_MIN": env_int("KIOSKOPS_MASS_OUTAGE_WINDOW_MIN", 10, minimum=1),
    # A kiosk-down incident's first message waits this long, so a hall's outage is announced once by its parent.
    "NOTIFY_GROUP_WAIT_S": env_int("KIOSKOPS_NOTIFY_GROUP_WAIT_S", 60, minimum=0),
    # The console's address, for links in notifications.
    "PUBLIC_BASE_URL": env_str("KIOSKOPS_PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
    # Onsite work orders (workorders/services.py): the policy dispatches incidents whose remote fix failed to the
    # best-ranked technician; a check-in holds the kiosk in maintenance at most this long (then it ends by itself
    # and the order says the technician forgot to check out); arrival target when the incident has none.
    "WORKORDER_AUTO_DISPATCH": env_bool("KIOSKOPS_WORKORDER_AUTO_DISPATCH", True),
    "WORKORDER_MAINTENANCE_LIMIT_MIN": env_int("KIOSKOPS_WORKORDER_MAINTENANCE_LIMIT_MIN", 240, minimum=10),
    "WORKORDER_DEFAULT_ONSITE_MIN": env_int("KIOSKOPS_WORKORDER_DEFAULT_ONSITE_MIN", 240, minimum=10),
    # Spare parts: a lot is flagged and alerted this many days before its expiry date (parts/selectors.py).
    "PARTS_EXPIRY_WARN_DAYS": env_int("KIOSKOPS_PARTS_EXPIRY_WARN_DAYS", 30, minimum=1),
}
if KIOSKOPS["HEARTBEAT_INGEST"] not in ("direct", "buffered"):
    raise ImproperlyConfigured("Environment variable KIOSKOPS_HEARTBEAT_INGEST must be 'direct' or 'buffered'.")
if KIOSKOPS["HEARTBEAT_INGEST"] == "buffered" and not REDIS_URL:
    raise ImproperlyConfigured("KIOSKOPS_HEARTBEAT_INGEST=buffered needs REDIS_URL: the buffer is a Redis stream.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("KIOSKOPS_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # The filesystem broker has no host; kombu warns about that on every connection.
        "kombu.connection": {"level": "ERROR"},
        # The PostgreSQL channel layer warns on every send to a group no page has joined (a board nobody has open):
        # that is the normal case, one line per heartbeat.
        "channels_postgres.core": {"level": "ERROR"},
    },
}

# --- HTTP security ----------------------------------------------------------------------------------------
# Off by default so the demo runs on plain http://127.0.0.1; production turns them on (README, "Running in
# production"), and `manage.py check --deploy` is clean with that configuration.
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# The load balancer's liveness probe speaks plain HTTP to the web server.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", False)
# Opt-in, and only behind a proxy that sets the header itself (and strips it from clients): otherwise a client
# could claim https. The value names the header as the proxy sends it, e.g. X-Forwarded-Proto.
_proxy_ssl_header = env_str("DJANGO_SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header:
    if not re.fullmatch(r"[A-Za-z0-9-]+", _proxy_ssl_header):
        raise ImproperlyConfigured(
            "Environment variable DJANGO_SECURE_PROXY_SSL_HEADER must be a header name such as X-Forwarded-Proto."
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
