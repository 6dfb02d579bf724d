"""Settings for the Data Console.

Databases come from the environment (``CONSOLE_DB_<ALIAS>`` URLs, see
``admin_site.conf``); unset, each alias is an embedded SQLite file under
``var/``.  To add a database, add an entry to ``CONSOLE_DATABASES`` in a settings
module that imports this one, then rebuild ``DATABASES`` from it.
"""

import datetime
import os
from pathlib import Path

from admin_site.conf import cache_settings, database_settings, replica_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CONSOLE_VAR_DIR", BASE_DIR / "var"))

# Development defaults; console.settings_production refuses to start without real ones.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-development-key-do-not-deploy")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]

#: One panel per alias: its title, banner colour and the apps whose tables it holds.
#: The first alias that lists an app is that app's home; the alias holding
#: auth/contenttypes/sessions/admin is the console's own (logins, history).
CONSOLE_DATABASES = {
    "users": {
        "title": "User data",
        "colour": "#1d4ed8",
        "apps": [
            "auth",
            "contenttypes",
            "sessions",
            "admin",
            "admin_site",
            "profiles",
            "axes",
            "otp_totp",
            "otp_static",
            # The background workers' task queue (django-tasks' database backend, admin_site.transfers.tasks).
            "django_tasks_database",
        ],
        # "require_otp": True asks this panel's users for a second factor (README "Second factor");
        # console.settings_production sets it on every panel.
    },
    "customers": {
        "title": "Customer data",
        "colour": "#047857",
        "apps": ["customers"],
    },
    "legacy": {
        "title": "Legacy system",
        "colour": "#b45309",
        "apps": ["legacy"],
    },
}

DATABASES = database_settings(CONSOLE_DATABASES, VAR_DIR)
#: Panel alias -> its read replicas' aliases in DATABASES (``CONSOLE_DB_<ALIAS>_REPLICAS``, admin_site.replicas):
#: lists and exports read a healthy replica that has this user's last write, everything else the panel's database.
CONSOLE_REPLICAS = replica_settings(CONSOLE_DATABASES, DATABASES)
#: A replica further behind its primary than this many seconds, or not replicating, is skipped.
CONSOLE_REPLICA_MAX_LAG = float(os.environ.get("CONSOLE_REPLICA_MAX_LAG", 30))
#: Seconds a replica's health is cached (in Django's cache, shared between processes when CONSOLE_CACHE_URL is set).
CONSOLE_REPLICA_HEALTH_SECONDS = float(os.environ.get("CONSOLE_REPLICA_HEALTH_SECONDS", 5))
#: After a user's write, how long a read waits for the replica to apply it (MASTER_GTID_WAIT) before reading
#: the primary instead.
CONSOLE_REPLICA_WAIT_SECONDS = float(os.environ.get("CONSOLE_REPLICA_WAIT_SECONDS", 0.5))
DATABASE_ROUTERS = ["routers.PanelRouter"]

# Each server process's own memory by default; CONSOLE_CACHE_URL=redis://host:6379/0 shares one
# Redis cache between processes and hosts (admin_site.conf.cache_settings).
CACHES = cache_settings(os.environ.get("CONSOLE_CACHE_URL", ""))

INSTALLED_APPS = [
    "admin_site",  # first: its templates override the admin's
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "import_export",
    "axes",  # login throttling; its tables are on the users database
    # Second factor (admin_site.second_factor): TOTP apps and backup codes, tables on the users database.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Big imports and exports run in a worker (`manage.py db_worker`), queued in the users database.
    "django_tasks",
    "django_tasks_db",
    "console.profiles",
    "console.customers",
    "console.legacy",
    "console.demo",
]
# mod_wsgi-express's `runmodwsgi` (which `manage.py serve`, i.e. make run, starts) where mod_wsgi is installed
# (requirements-wsgi.txt; it needs apache2-dev).
# Inside Apache, `mod_wsgi` is the embedded module, not this package: the import fails there, as it should.
try:
    import mod_wsgi.express  # noqa: F401
except ImportError:
    pass
else:
    INSTALLED_APPS.append("mod_wsgi.express")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the second factor (django-otp).
    "django_otp.middleware.OTPMiddleware",
    # A signed-in session's expiry moves forward as it is used (idle time-out, admin_site.sessions).
    "admin_site.sessions.IdleSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A request whose database cannot be reached: a 503 page naming it (admin_site.outages).
    "admin_site.outages.DatabaseOutageMiddleware",
    # A legacy model page whose table or column is gone: a page naming the drift, not a 500 (admin_site.drift).
    "admin_site.drift.SchemaDriftMiddleware",
    # Last: turns a locked-out login into the lockout page (admin_site.throttling).
    "axes.middleware.AxesMiddleware",
]

# Login throttling (django-axes, README "Login throttling"): AxesBackend first refuses a locked-out login
# before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesBackend", "django.contrib.auth.backends.ModelBackend"]
#: Failed logins (per username and address) within the cool-off that lock them out.
CONSOLE_LOGIN_FAILURE_LIMIT = int(os.environ.get("CONSOLE_LOGIN_FAILURE_LIMIT", 5))
#: Minutes a failure counts and a lockout lasts.
CONSOLE_LOGIN_COOLOFF_MINUTES = int(os.environ.get("CONSOLE_LOGIN_COOLOFF_MINUTES", 15))
AXES_FAILURE_LIMIT = CONSOLE_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = datetime.timedelta(minutes=CONSOLE_LOGIN_COOLOFF_MINUTES)
# Each failure expires on its own after the cool-off: "5 within 15 minutes", not 5 ever.
AXES_USE_ATTEMPT_EXPIRATION = True
# One counter per username and address; the database handler shares it between server processes.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_USERNAME_CALLABLE = "admin_site.throttling.username"
AXES_LOCKOUT_CALLABLE = "admin_site.throttling.lockout_response"
# The address is REMOTE_ADDR: X-Forwarded-For is read only behind CONSOLE_TRUSTED_PROXIES proxies
# (admin_site.throttling.client_address; django-ipware is not installed).
#: Reverse proxies in front of the console that append the client's address to X-Forwarded-For; 0: none.
CONSOLE_TRUSTED_PROXIES = int(os.environ.get("CONSOLE_TRUSTED_PROXIES", 0))
AXES_CLIENT_IP_CALLABLE = "admin_site.throttling.client_address"
AXES_RESET_ON_SUCCESS = True
# Axes' own admin registration is replaced by the users panel's (admin_site.admin).
AXES_ENABLE_ADMIN = False

# Second factor (django-otp, README "Second factor"). Wrong codes wait 1, 2, 4, 8... seconds per device.
OTP_TOTP_ISSUER = "Data Console"
OTP_TOTP_THROTTLE_FACTOR = 1
# A code counts only within one 30-second step of the server's clock: no drift follows codes from the future.
OTP_TOTP_SYNC = False
OTP_STATIC_THROTTLE_FACTOR = 1

# Staff sessions end after this many idle minutes: the expiry moves forward as the session is used
# (admin_site.sessions.IdleSessionMiddleware, at most one session write a minute).
CONSOLE_SESSION_IDLE_MINUTES = int(os.environ.get("CONSOLE_SESSION_IDLE_MINUTES", 30))
SESSION_COOKIE_AGE = CONSOLE_SESSION_IDLE_MINUTES * 60

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"
# Where a login lands when its `next` is missing or refused as unsafe (another host): the console home.
LOGIN_REDIRECT_URL = "console-home"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Import/export (admin_site.transfers.options): uploads wait here between preview and
# confirm; with several hosts, point it at a directory they all mount.
CONSOLE_IMPORT_DIR = Path(os.environ.get("CONSOLE_IMPORT_DIR", VAR_DIR / "imports"))
CONSOLE_IMPORT_MAX_AGE = 24 * 3600  # seconds an unconfirmed upload is kept
# A transfer record still "running" with no progress noted for this long belongs to a process that died:
# the sweep marks it failed.
CONSOLE_TRANSFER_STALE_AFTER = 600
CONSOLE_IMPORT_MAX_BYTES = int(os.environ.get("CONSOLE_IMPORT_MAX_BYTES", 50 * 1024 * 1024))
CONSOLE_XLSX_MAX_ROWS = 200_000
# Imports of more rows than this (preview and confirm), and exports of more rows than this, run in the
# background worker with a progress page (admin_site.transfers.background); finished exports wait in
# CONSOLE_EXPORT_DIR (default: beside CONSOLE_IMPORT_DIR) for CONSOLE_IMPORT_MAX_AGE seconds.
CONSOLE_BACKGROUND_IMPORT_ROWS = int(os.environ.get("CONSOLE_BACKGROUND_IMPORT_ROWS", 20_000))
CONSOLE_BACKGROUND_EXPORT_ROWS = int(os.environ.get("CONSOLE_BACKGROUND_EXPORT_ROWS", 20_000))
# A background transfer whose worker has not been heard from for this many seconds died: it is marked failed.
CONSOLE_TRANSFER_HEARTBEAT_TIMEOUT = 60
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# The queue's table, created by one migration of ours: django-tasks-db's own 0019 introspects every database,
# whatever the router allows, and fails on MySQL for the databases that do not hold the table.
MIGRATION_MODULES = {"django_tasks_database": "admin_site.tasks_migrations"}
IMPORT_EXPORT_USE_TRANSACTIONS = True
# Django's own limit on non-file form data, kept; uploads above this go to disk, not memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # Django's own configuration gives "django" a console handler of its own (with DEBUG on): without
        # this, every django.* line would be written twice, once by it and once by the root's.
        "django": {"handlers": [], "level": "INFO"},
        "django.db.backends": {"level": "INFO"},
        # One line when a database becomes unreachable (with its traceback), one when it is back.
        "admin_site.outages": {"level": "INFO"},
        # django-axes: failures and lockouts (warnings), not its start-up banner and per-request notes.
        "axes": {"level": "WARNING"},
    },
}
