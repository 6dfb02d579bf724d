"""Production deployment: ``console.settings_production``, ``deploy/wsgi.py`` and the Apache vhost.

The suite itself runs on ``tests.settings``, and production settings read the
environment once, at import: every case starts Python in a subprocess with a clean
environment.  The fake MySQL URLs point at a socket the test listens on, so a
connection attempt (which ``check --deploy`` and the login page must not make) is seen.
"""

import inspect
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.management.utils import get_random_secret_key

from admin_site import express
from admin_site.conf import env_var
from console import settings as base_settings

BASE_DIR = Path(__file__).resolve().parent.parent
DEPLOY = BASE_DIR / "deploy"
REQUIRED = ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", *(env_var(alias) for alias in base_settings.CONSOLE_DATABASES)]
HOST = "console.example.com"
#: Where console.settings_production looks by default; the deploy files and README name it too.
ENV_FILE = "/etc/data-console/console.env"


@pytest.fixture
def listener():
    """A TCP port nothing should connect to; the test fails if something did."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]
        server.setblocking(False)
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            return
        connection.close()
        pytest.fail("something opened a database connection")


@pytest.fixture
def settings_env(tmp_path, listener):
    """The variables production needs, with MySQL URLs that lead nowhere."""
    env = {
        "DJANGO_SECRET_KEY": get_random_secret_key(),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "CONSOLE_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
    }
    for alias in base_settings.CONSOLE_DATABASES:
        option_file = tmp_path / f"{alias}.cnf"  # never read: nothing connects
        env[env_var(alias)] = f"mysql://127.0.0.1:{listener}/console_{alias}?read_default_file={option_file}"
    return env


def run_python(args, env):
    """Run the checkout's Python with only ``env`` (plus PATH and a locale), as a server would."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "CONSOLE_ENV_FILE": ""}
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def start_wsgi_entry(env):
    """Load the application the way Apache and uWSGI do: deploy/wsgi.py, no DJANGO_SETTINGS_MODULE."""
    return run_python(["-c", f"import runpy; runpy.run_path({str(DEPLOY / 'wsgi.py')!r})"], env)


def write_env_file(path, env):
    lines = ["# written by the test", ""]
    lines += [f"{name}='{value}'" if name == "DJANGO_SECRET_KEY" else f"{name}={value}" for name, value in env.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("source", ["process environment", "environment file"])
def test_check_deploy_reports_no_issues_and_connects_to_no_database(settings_env, tmp_path, source):
    env = {"DJANGO_SETTINGS_MODULE": "console.settings_production"}
    if source == "environment file":
        env["CONSOLE_ENV_FILE"] = str(write_env_file(tmp_path / "console.env", settings_env))
    else:
        env.update(settings_env)
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in output and "?: (" not in output


def test_environment_file_fills_in_what_the_process_environment_lacks(settings_env, tmp_path):
    from_file = {**settings_env, "DJANGO_ALLOWED_HOSTS": "from-file.example.com", "DJANGO_CSRF_TRUSTED_ORIGINS": ""}
    from_file["CONSOLE_CACHE_URL"] = "redis://127.0.0.1:6379/1"  # read, not connected to
    env_file = write_env_file(tmp_path / "console.env", from_file)
    env_file.write_text(
        env_file.read_text(encoding="utf-8") + 'export DJANGO_HSTS_PRELOAD="0"\nDJANGO_LOG_LEVEL=WARNING  # quieter\n'
    )
    script = textwrap.dedent("""
        import json
        from django.conf import settings
        print(json.dumps({"hosts": settings.ALLOWED_HOSTS, "debug": settings.DEBUG, "key": settings.SECRET_KEY,
                          "preload": settings.SECURE_HSTS_PRELOAD, "static": str(settings.STATIC_ROOT),
                          "databases": {a: settings.DATABASES[a]["PORT"] for a in settings.CONSOLE_DATABASES},
                          "cache": [settings.CACHES["default"][k] for k in ("BACKEND", "LOCATION")],
                          "log_level": settings.LOGGING["root"]["level"]}))
    """)
    env = {
        "DJANGO_SETTINGS_MODULE": "console.settings_production",
        "CONSOLE_ENV_FILE": str(env_file),
        "DJANGO_ALLOWED_HOSTS": f"{HOST}, www.{HOST}",
    }
    result = run_python(["-c", script], env)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["hosts"] == [HOST, f"www.{HOST}"]  # the process environment wins
    assert loaded["key"] == settings_env["DJANGO_SECRET_KEY"]  # quotes stripped
    assert loaded["debug"] is False and loaded["preload"] is False
    assert loaded["log_level"] == "WARNING"  # an inline comment is not part of the value
    assert loaded["static"] == settings_env["DJANGO_STATIC_ROOT"]
    port = int(settings_env[env_var("users")].split(":")[2].split("/")[0])
    assert loaded["databases"] == {alias: port for alias in base_settings.CONSOLE_DATABASES}
    assert loaded["cache"] == ["django.core.cache.backends.redis.RedisCache", "redis://127.0.0.1:6379/1"]


@pytest.mark.parametrize("name", REQUIRED)
def test_each_missing_variable_stops_startup_and_is_named(settings_env, name):
    del settings_env[name]
    result = start_wsgi_entry(settings_env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert f"missing {name}." in message, message


@pytest.mark.parametrize(("name", "value"), [("DJANGO_HSTS_SECONDS", "1y"), ("DJANGO_HSTS_PRELOAD", "maybe")])
def test_a_malformed_value_stops_startup_and_is_named(settings_env, name, value):
    result = start_wsgi_entry({**settings_env, name: value})
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("django.core.exceptions.ImproperlyConfigured") and name in message, message
    assert repr(value) in message


def test_one_message_names_every_missing_variable(tmp_path):
    result = start_wsgi_entry({"CONSOLE_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert f"missing {', '.join(REQUIRED)}." in message, message


def test_a_named_environment_file_must_exist(settings_env, tmp_path):
    result = start_wsgi_entry({**settings_env, "CONSOLE_ENV_FILE": str(tmp_path / "absent.env")})
    assert result.returncode != 0
    assert "absent.env, which does not exist" in result.stderr


def test_a_malformed_environment_file_names_the_line_not_the_value(settings_env, tmp_path):
    env_file = tmp_path / "console.env"
    env_file.write_text("# settings\nDJANGO_DEBUG=0\nsecret-value-without-a-name\n")
    result = start_wsgi_entry({**settings_env, "CONSOLE_ENV_FILE": str(env_file)})
    assert result.returncode != 0
    assert "line 3: expected NAME=value" in result.stderr
    assert "secret-value-without-a-name" not in result.stderr


def development_secret_key(var_dir):
    result = run_python(["-c", "import console.settings as s; print(s.SECRET_KEY)"], {"CONSOLE_VAR_DIR": var_dir})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    "kind, key, problem",
    [
        ("development default", None, "DJANGO_SECRET_KEY is a development key"),
        ("startproject's", "django-insecure-" + get_random_secret_key(), "DJANGO_SECRET_KEY is a development key"),
        ("short", get_random_secret_key()[:40], "DJANGO_SECRET_KEY is too weak"),
        ("repetitive", "abcd" * 20, "DJANGO_SECRET_KEY is too weak"),
    ],
)
def test_weak_secret_keys_are_refused(settings_env, kind, key, problem):
    settings_env["DJANGO_SECRET_KEY"] = key or development_secret_key(settings_env["CONSOLE_VAR_DIR"])
    result = start_wsgi_entry(settings_env)
    assert result.returncode != 0, kind
    assert problem in result.stderr


def test_wsgi_entry_serves_https_only_without_debug(settings_env):
    script = textwrap.dedent("""
        import io, json, runpy, sys
        application = runpy.run_path(sys.argv[1])["application"]
        def get(path, scheme):
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": sys.argv[2],
                       "SERVER_PORT": "443", "HTTP_HOST": sys.argv[2], "SERVER_PROTOCOL": "HTTP/1.1",
                       "wsgi.url_scheme": scheme, "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
                       "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True,
                       "wsgi.run_once": False}
            seen = {}
            def start_response(status, headers, exc_info=None):
                seen.update(status=status, headers=dict(headers))
            body = b"".join(application(environ, start_response)).decode()
            return {**seen, "debug_page": "DEBUG = True" in body}
        print(json.dumps({"http": get("/users/login/", "http"), "https": get("/users/login/", "https"),
                          "missing": get("/no-such-page/", "https")}))
    """)
    result = run_python(["-c", script, str(DEPLOY / "wsgi.py"), HOST], settings_env)
    assert result.returncode == 0, result.stderr
    responses = json.loads(result.stdout)
    assert responses["http"]["status"].startswith("301")
    assert responses["http"]["headers"]["Location"] == f"https://{HOST}/users/login/"
    assert responses["https"]["status"].startswith("200")
    assert responses["https"]["headers"]["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "; secure" in responses["https"]["headers"]["Set-Cookie"].lower()
    assert responses["missing"]["status"].startswith("404") and not responses["missing"]["debug_page"]


def test_apache_and_uwsgi_load_the_same_entry_and_environment_file():
    vhost = (DEPLOY / "apache" / "data-console.conf").read_text(encoding="utf-8")
    ini = (DEPLOY / "uwsgi" / "data-console.ini").read_text(encoding="utf-8")
    assert "WSGIScriptAlias / ${CONSOLE_HOME}/deploy/wsgi.py" in vhost
    assert "wsgi-file = %(console_home)/deploy/wsgi.py" in ini
    assert "touch-reload = %(console_home)/deploy/wsgi.py" in ini
    settings_source = (BASE_DIR / "console" / "settings_production.py").read_text(encoding="utf-8")
    for text in (settings_source, vhost, ini, (DEPLOY / "README.md").read_text(encoding="utf-8")):
        assert ENV_FILE in text


def test_the_uwsgi_site_values_are_written_out_in_full():
    """uWSGI does not expand ``%(...)`` inside ``set-placeholder``: a nested value reaches Python verbatim.

    Seen on Debian 12 with uWSGI 2.0.31: ``console_venv=%(console_home)/.venv`` made every worker die with
    "Python Home is not a directory: %(console_home)/.venv".
    """
    ini = (DEPLOY / "uwsgi" / "data-console.ini").read_text(encoding="utf-8")
    placeholders = dict(
        line.split("=", 1)[1].strip().split("=", 1) for line in ini.splitlines() if line.startswith("set-placeholder")
    )
    assert set(placeholders) == {"console_home", "console_venv"}
    assert not [value for value in placeholders.values() if "%(" in value]
    unit = (DEPLOY / "uwsgi" / "data-console-uwsgi.service").read_text(encoding="utf-8")
    [exec_start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_start == f"ExecStart={placeholders['console_venv']}/bin/uwsgi --ini /etc/data-console/uwsgi.ini"


# --- Apache ------------------------------------------------------------------------------------------------

APACHE = shutil.which("apache2") or shutil.which("apache2", path="/usr/sbin")
APACHE_MODULES = Path("/usr/lib/apache2/modules")  # Debian's
MOD_WSGI_EXPRESS = Path(sys.executable).with_name("mod_wsgi-express")
#: What the vhost needs besides mod_wsgi (log_config and unixd are built into Debian's apache2).
MODULES = ["mpm_event", "authz_core", "alias", "headers", "reqtimeout", "socache_shmcb", "ssl"]


@pytest.mark.skipif(not APACHE, reason="Apache is not installed (apt-get install apache2): no vhost syntax check")
def test_apache_vhost_passes_the_syntax_check(tmp_path):
    if not MOD_WSGI_EXPRESS.exists():
        pytest.skip("mod_wsgi is not installed in this venv (pip install mod-wsgi): the WSGI directives cannot load")
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed: no certificate for the HTTPS vhost")
    missing = [name for name in MODULES if not (APACHE_MODULES / f"mod_{name}.so").exists()]
    if missing:
        pytest.skip(f"Apache modules missing from {APACHE_MODULES}: {', '.join(missing)}")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={HOST}"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    module_config = subprocess.run([MOD_WSGI_EXPRESS, "module-config"], check=True, capture_output=True, text=True)

    # The site values an operator edits, pointed into tmp_path: every one must exist in the shipped file.
    site_values = {
        "CONSOLE_SERVER_NAME": HOST,
        "CONSOLE_HOME": str(BASE_DIR),
        "CONSOLE_VENV": sys.prefix,
        "CONSOLE_STATIC": str(tmp_path / "static"),
        "CONSOLE_USER": "nobody",
        "CONSOLE_GROUP": "nogroup",
        "CONSOLE_TLS_CERT": str(cert),
        "CONSOLE_TLS_KEY": str(key),
    }
    lines = (DEPLOY / "apache" / "data-console.conf").read_text(encoding="utf-8").splitlines()
    defined = {}
    for number, line in enumerate(lines):
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[0] == "Define" and parts[1] in site_values:
            defined[parts[1]] = parts[2]
            lines[number] = f"Define {parts[1]} {site_values[parts[1]]}"
    assert set(defined) == set(site_values), "the vhost's Define lines changed"
    (tmp_path / "site.conf").write_text("\n".join(lines) + "\n")
    (tmp_path / "logs").mkdir()
    loads = "\n".join(f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so" for name in MODULES)
    (tmp_path / "httpd.conf").write_text(
        textwrap.dedent(f"""\
            ServerRoot {tmp_path}
            DefaultRuntimeDir {tmp_path}
            PidFile {tmp_path}/httpd.pid
            ErrorLog {tmp_path}/logs/error.log
            ServerName localhost
            {loads}
            Define APACHE_LOG_DIR {tmp_path}/logs
            Listen 80
            Listen 443
        """)
        + module_config.stdout
        + f"\nInclude {DEPLOY / 'apache' / 'wsgi.conf'}\nInclude {tmp_path / 'site.conf'}\n"
    )

    def apache(*options):
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/bin"), "LANG": "C"}
        command = [APACHE, *options, "-f", str(tmp_path / "httpd.conf")]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "AH00111" not in output, output  # a ${VARIABLE} that no Define sets
        return output

    assert "Syntax OK" in apache("-t")
    virtual_hosts = apache("-t", "-D", "DUMP_VHOSTS")
    for port in (80, 443):
        assert re.search(rf"\*:{port}\s+{re.escape(HOST)} ", virtual_hosts), virtual_hosts


# --- Time-outs and limits: the vhost and make run's server ---------------------------------------------------


def vhost_directives():
    """The vhost's directives (continuation lines joined, ``${NAME}`` expanded) and its Define values."""
    text = (DEPLOY / "apache" / "data-console.conf").read_text(encoding="utf-8").replace("\\\n", " ")
    defines = express.vhost_defines()
    lines = [re.sub(r"\$\{(\w+)\}", lambda m: defines.get(m.group(1), m.group(0)), line) for line in text.splitlines()]
    directives = {}
    for line in lines:
        words = line.split()
        if words and not words[0].startswith(("#", "<")):
            directives.setdefault(words[0], []).append(words[1:])
    return directives, defines


def express_options(env=None, threads=4):
    """mod_wsgi-express's options as ``make run`` passes them, as a dict (repeated options: a list of values)."""
    runtime = express.Runtime("python", express.REPO)
    argv = express.Server(runtime, "/nonexistent", env=env or {}, port=1, threads=threads).command()
    options, index = {}, argv.index("runmodwsgi") + 1
    while index < len(argv):
        name, index = argv[index], index + 1
        values = []
        while index < len(argv) and not argv[index].startswith("--"):
            values.append(argv[index])
            index += 1
        options.setdefault(name, []).append(values[0] if len(values) == 1 else values)
    return {name: values[0] if len(values) == 1 else values for name, values in options.items()}


def test_the_vhost_and_make_runs_server_use_the_same_time_outs():
    directives, _ = vhost_directives()
    (daemon,) = directives["WSGIDaemonProcess"]
    vhost = dict(word.split("=", 1) for word in daemon[1:] if "=" in word)
    served = express_options()
    for name in ("request", "socket", "response-socket", "queue", "graceful", "shutdown"):
        assert vhost[f"{name}-timeout"] == served[f"--{name}-timeout"], name
    # mod_wsgi-express makes Apache's Timeout its socket-timeout; so does the vhost.
    assert directives["Timeout"] == [[vhost["socket-timeout"]]]
    header = (
        f"header={served['--header-timeout']}-{served['--header-max-timeout']},MinRate={served['--header-min-rate']}"
    )
    body = f"body={served['--body-timeout']},MinRate={served['--body-min-rate']}"
    assert directives["RequestReadTimeout"] == [[header, body]]
    assert directives["KeepAliveTimeout"] == [[served["--keep-alive-timeout"]]]


def test_apache_waits_for_the_daemon_longer_than_the_daemon_works():
    """A request past socket-timeout is answered 504 by Apache; the daemon must have given up on it before that.

    mod_wsgi 6 stops a request after request-timeout x (1 + ln threads), then lets the process's other
    requests finish (graceful-timeout) before it restarts (shutdown-timeout).
    """
    directives, defines = vhost_directives()
    (daemon,) = directives["WSGIDaemonProcess"]
    vhost = {key: int(value) for key, value in (word.split("=", 1) for word in daemon[1:]) if value.isdigit()}
    server_threads = inspect.signature(express.Server).parameters["threads"].default
    for threads in (vhost["threads"], server_threads, int(defines["CONSOLE_THREADS"])):
        stopped = vhost["request-timeout"] * (1 + math.log(threads)) + vhost["graceful-timeout"]
        stopped += vhost["shutdown-timeout"] + 5  # the monitor looks once a second; a margin
        assert vhost["socket-timeout"] >= stopped, (threads, stopped)
        served = express_options(threads=threads)
        assert int(served["--socket-timeout"]) >= stopped
    assert vhost["queue-timeout"] < vhost["request-timeout"]


def test_the_request_body_limit_is_the_import_limit_plus_the_form_around_it():
    directives, defines = vhost_directives()
    envelope = int(defines["CONSOLE_UPLOAD_ENVELOPE"])
    assert 0 < envelope <= 16 * 1_048_576
    assert directives["LimitRequestBody"] == [[str(base_settings.CONSOLE_IMPORT_MAX_BYTES + envelope)]]
    assert int(express_options()["--limit-request-body"]) == base_settings.CONSOLE_IMPORT_MAX_BYTES + envelope
    # make run's server follows the variable that console.settings reads.
    moved = express_options({"CONSOLE_IMPORT_MAX_BYTES": str(100 * 1_048_576)})
    assert int(moved["--limit-request-body"]) == 100 * 1_048_576 + envelope


def test_apaches_own_error_answers_are_console_pages_in_both_places():
    directives, _ = vhost_directives()
    vhost = {int(status): page for status, page in directives["ErrorDocument"]}
    served = {int(status): page for status, page in express_options()["--error-document"]}
    assert vhost == served
    assert {413, 502, 504} <= set(vhost)
    (alias,) = [target for url, target in directives["Alias"] if url == "/console-errors/"]
    assert alias.endswith("/deploy/apache/errors/"), alias
    for page in vhost.values():
        html = (DEPLOY / "apache" / "errors" / page.removeprefix("/console-errors/")).read_text(encoding="utf-8")
        assert "Data Console" in html
