"""Production settings: ``console.settings`` with every secret and host taken from the environment.

mod_wsgi daemon processes never see Apache's ``SetEnv`` values in ``os.environ``, and
uWSGI, cron and an operator's shell each have environments of their own.  So this
module first reads the *environment file* (``CONSOLE_ENV_FILE``, default
``/etc/data-console/console.env``; python-dotenv's ``NAME=value`` format) into
``os.environ``, then builds the settings.  Apache, uWSGI and ``manage.py`` therefore
start from the same file; a variable already in the process environment wins over the file.

The console refuses to start (``ImproperlyConfigured``, one message naming every
problem) without a real ``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS`` and a
``CONSOLE_DB_<ALIAS>`` URL for every panel: an unset URL would otherwise fall back
to an embedded SQLite file.  See ``deploy/README.md``.
"""

import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv.parser import parse_stream

ENV_FILE = "/etc/data-console/console.env"

#: What a shell accepts as a variable name; python-dotenv alone would take ``a-b`` or a bare word.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def read_env_file(path):
    """Return the ``NAME=value`` pairs of an environment file, parsed by python-dotenv.

    The format suits systemd's ``EnvironmentFile=`` and a shell's ``set -a; . file``
    too: ``#`` comments, ``export``, quoted values.  ``${NAME}`` is not expanded.  A
    line that is not an assignment is an error naming its line number, never its text,
    which may hold a secret; python-dotenv alone would skip it with a warning.
    """
    values = {}
    with Path(path).open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.key is None and not binding.error:
                continue  # blank lines and comments
            if binding.error or binding.value is None or not _NAME.match(binding.key):
                raise ImproperlyConfigured(f"{path}, line {binding.original.line}: expected NAME=value.")
            values[binding.key] = binding.value
    return values


def load_env_file(environ=os.environ):
    """Add the environment file's variables to ``environ`` (set ones win); describe what was read.

    A missing file at the default path is not an error by itself (the variables may
    come from the process environment); a path named by ``CONSOLE_ENV_FILE`` must
    exist, and ``CONSOLE_ENV_FILE=`` (empty) reads no file.
    """
    path = environ.get("CONSOLE_ENV_FILE", ENV_FILE)
    if not path:
        return "none (CONSOLE_ENV_FILE is empty)"
    try:
        values = read_env_file(path)
    except FileNotFoundError:
        if "CONSOLE_ENV_FILE" in environ:
            raise ImproperlyConfigured(f"CONSOLE_ENV_FILE names {path}, which does not exist.") from None
        return f"{path} (not found)"
    except PermissionError:
        raise ImproperlyConfigured(
            f"Environment file {path} is not readable by uid {os.getuid()}: "
            "make it mode 0640, owned by root and the console's group."
        ) from None
    for name, value in values.items():
        environ.setdefault(name, value)
    return path


def env_flag(name, default):
    """A boolean from the environment: 1/true/yes/on or 0/false/no/off."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0, not {value!r}.")


def env_seconds(name, default):
    """A whole number of seconds from the environment."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ImproperlyConfigured(f"{name} must be a whole number of seconds (e.g. 31536000), not {value!r}.")
    return int(value)


def env_list(name):
    """A comma-separated list from the environment, blanks dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# Before console.settings reads os.environ (database URLs, CONSOLE_VAR_DIR, ...).
_ENV_SOURCE = load_env_file()

from admin_site.conf import env_var  # noqa: E402
from console.settings import *  # noqa: E402, F403
from console.settings import BASE_DIR, CONSOLE_DATABASES  # noqa: E402


def _check_environment():
    """Every problem that keeps the console from starting, in one list."""
    required = ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", *(env_var(alias) for alias in CONSOLE_DATABASES)]
    problems = []
    missing = [name for name in required if not os.environ.get(name, "").strip(" ,")]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    key = os.environ.get("DJANGO_SECRET_KEY", "").strip()
    # console.settings' default and startproject's "django-insecure-..." keys.
    if "insecure" in key.lower():
        problems.append("DJANGO_SECRET_KEY is a development key")
    elif key and (len(key) < 50 or len(set(key)) < 5):
        problems.append("DJANGO_SECRET_KEY is too weak: use 50 or more random characters")
    if problems:
        raise ImproperlyConfigured(
            f"Production settings refuse to start: {'; '.join(problems)}. "
            f"Environment file: {_ENV_SOURCE}. See deploy/README.md."
        )


_check_environment()

DEBUG = False
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"].strip()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
#: Only needed when the browser's origin differs from the Host Django sees (a proxy rewriting it).
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# HTTPS only.  Apache (or nginx) terminates TLS itself and tells the app so; behind a
# load balancer that terminates TLS, set DJANGO_TLS_PROXY=1 and make the proxy set
# X-Forwarded-Proto (and strip it from clients), or every request redirects forever.
SECURE_SSL_REDIRECT = True
if env_flag("DJANGO_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_seconds("DJANGO_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_flag("DJANGO_HSTS_PRELOAD", True)

# Every panel asks for a second factor (README "Second factor"); CONSOLE_REQUIRE_OTP=0 turns that off.
CONSOLE_REQUIRE_OTP = env_flag("CONSOLE_REQUIRE_OTP", True)
CONSOLE_DATABASES = {alias: {"require_otp": CONSOLE_REQUIRE_OTP, **panel} for alias, panel in CONSOLE_DATABASES.items()}

# collectstatic writes here; Apache's `Alias /static/` (CONSOLE_STATIC) serves it.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "static"))

# To stderr: mod_wsgi sends it to the virtual host's ErrorLog, uWSGI to its log.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
