"""The cache: each server process's own memory by default, one Redis for all of them with ``CONSOLE_CACHE_URL``.

Settings read the environment once, at import, and "shared between processes" is
only seen from two processes: every case starts Python in subprocesses.  The Redis
cases use the server at ``CONSOLE_TEST_CACHE_URL`` (default: this machine's
``redis://127.0.0.1:6379/0``); they skip when it is unreachable, except under CI
(``CONSOLE_E2E_REQUIRED=1``), where they fail.
"""

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("CONSOLE_TEST_CACHE_URL", "redis://127.0.0.1:6379/0")

#: Sets the key given as argv[1] (if a value follows), then prints the backend and what the key holds.
SCRIPT = textwrap.dedent("""
    import json, sys
    from django.conf import settings
    from django.core.cache import cache
    key, value = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
    if value is not None:
        cache.set(key, value, 60)
    print(json.dumps({"backend": settings.CACHES["default"]["BACKEND"], "value": cache.get(key)}))
    if value is None:
        cache.delete(key)
""")


def in_a_process(tmp_path, *args, cache_url=None):
    """Run ``SCRIPT`` with ``console.settings`` in a fresh process, as one server process would."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "CONSOLE_VAR_DIR": str(tmp_path / "var"),
    }
    if cache_url is not None:
        env["CONSOLE_CACHE_URL"] = cache_url
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def redis_url():
    """``REDIS_URL`` if a Redis server answers there; skip (fail under CI) if not."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError as exc:
        reason = f"Redis is not reachable at {REDIS_URL} ({exc}): set CONSOLE_TEST_CACHE_URL or start redis-server"
        if os.environ.get("CONSOLE_E2E_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return REDIS_URL


def test_by_default_each_process_has_its_own_cache(tmp_path):
    key = f"console-test-{uuid.uuid4().hex}"
    first = in_a_process(tmp_path, key, "set by the first process")
    assert first == {"backend": "django.core.cache.backends.locmem.LocMemCache", "value": "set by the first process"}
    assert in_a_process(tmp_path, key)["value"] is None


def test_with_a_redis_url_every_process_shares_one_cache(tmp_path, redis_url):
    key = f"console-test-{uuid.uuid4().hex}"
    first = in_a_process(tmp_path, key, "set by the first process", cache_url=redis_url)
    assert first == {"backend": "django.core.cache.backends.redis.RedisCache", "value": "set by the first process"}
    assert in_a_process(tmp_path, key, cache_url=redis_url)["value"] == "set by the first process"


def test_a_cache_url_of_another_kind_stops_startup_without_showing_it(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CONSOLE_VAR_DIR": str(tmp_path / "var")}
    env["CONSOLE_CACHE_URL"] = "memcached://console:hunter2@127.0.0.1:11211"
    result = subprocess.run(
        [sys.executable, "-c", "import console.settings"], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("django.core.exceptions.ImproperlyConfigured: CONSOLE_CACHE_URL must be"), message
    assert "hunter2" not in result.stderr
