"""Serve the console with mod_wsgi-express (Apache, daemon mode): ``manage.py serve`` and the e2e tests.

Why a harness and not a bare ``manage.py runmodwsgi``:

- Apache refuses to serve as root, so as root the daemon processes run as an
  unprivileged user (``www-data``, or ``$CONSOLE_DAEMON_USER``).  That user must
  read the interpreter, the venv and the code.  A Python or checkout under a 0700
  home (pyenv under ``/root``) makes the daemon die with "failed to get the Python
  codec of the filesystem encoding" (or a missing stdlib module) while the port
  still answers.  Instead of loosening the home's permissions the harness builds
  a world-readable runtime: a venv from a system Python holding
  ``requirements.txt`` + ``requirements-wsgi.txt``, cached under
  ``/var/tmp/data-console/`` by a hash of those files (built once, under a lock),
  and, when the user cannot read the checkout either, a copy of its files.
- mod_wsgi is compiled against one libpython: it is always installed with
  ``--no-cache-dir``, or pip reuses a wheel built for another Python of the same
  version (pyenv's) and the daemon loads the wrong libpython.
- Readiness is an HTTP answer, not a pid file; stopping is SIGTERM to the Apache
  parent and a wait, then a check that no process of the server's session is left.

``manage.py serve [--host H] [--port P]`` (``make run``) uses ``serve``; the e2e
tests and the benches use ``prepare_runtime`` and ``Server``.
"""

import contextlib
import fcntl
import grp
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: World-readable, root-owned home of the cached runtimes (and of run directories when serving as root).
CACHE = Path(os.environ.get("CONSOLE_RUNTIME_CACHE", "/var/tmp/data-console"))
REQUIREMENTS = ("requirements.txt", "requirements-wsgi.txt")
#: System interpreters an unprivileged user can normally run, best first.
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")
#: Apache refuses root; this account runs the daemon processes when we are root.
DAEMON_USER = os.environ.get("CONSOLE_DAEMON_USER", "www-data")
#: The production vhost: its ``Define CONSOLE_*`` time-outs and limits are this server's too (one source).
VHOST = REPO / "deploy" / "apache" / "data-console.conf"
#: Apache's own error pages (a body over the limit, a time-out), served at ``/console-errors/`` as in the vhost.
ERROR_PAGES = {413: "413.html", 500: "50x.html", 502: "50x.html", 503: "50x.html", 504: "50x.html"}
#: Apache worker threads (--max-clients), all started at once and kept: a keep-alive connection whose request
#: waits for the daemon holds one, and when none is idle new connections wait unaccepted (express's default is
#: too few; see deploy/README.md).  Reaping idle workers would close their keep-alive connections.
MAX_CLIENTS = 100


class Unavailable(Exception):
    """Something the mod_wsgi server needs is missing here; the message says what to install or set."""


class ServerError(Exception):
    """The server did not start, did not answer, or left processes behind; the message carries its log."""


def apxs():
    """Apache's build tool (Debian's apache2-dev); mod_wsgi cannot be built without it."""
    return shutil.which("apxs") or shutil.which("apxs2")


def daemon_account():
    """(user, group) the daemon processes run as: None, None unless we are root."""
    if os.geteuid() != 0:
        return None, None
    try:
        entry = pwd.getpwnam(DAEMON_USER)
    except KeyError:
        raise Unavailable(f"user {DAEMON_USER!r} does not exist (set CONSOLE_DAEMON_USER)") from None
    return DAEMON_USER, grp.getgrgid(entry.pw_gid).gr_name


def run_as(user, argv, **kwargs):
    """Run ``argv`` as ``user`` (None: as ourselves) from ``/``, so our cwd's permissions do not matter."""
    if user is not None:
        entry = pwd.getpwnam(user)
        kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        kwargs.setdefault("env", {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    return subprocess.run(argv, cwd="/", capture_output=True, text=True, **kwargs)


def can_serve(python, user, code):
    """Can ``user`` run ``python`` with Django and mod_wsgi, and read the code in ``code``?"""
    check = f"import django, mod_wsgi.server; open({str(code / 'manage.py')!r}).close()"
    try:
        return run_as(user, [python, "-c", check]).returncode == 0
    except OSError:
        return False


@dataclass(frozen=True)
class Runtime:
    """What the daemon runs: a venv interpreter with mod_wsgi, the code, and the account."""

    python: str
    code: Path
    user: str | None = None
    group: str | None = None

    def manage(self, *args, env, check=True):
        """Run ``manage.py`` with the runtime's interpreter and code (as ourselves)."""
        result = subprocess.run(
            [self.python, str(self.code / "manage.py"), *args],
            cwd=self.code,
            env=env,
            capture_output=True,
            text=True,
        )
        if check and result.returncode:
            raise ServerError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def give(self, path, mode=None):
        """Hand ``path`` (a file or a directory we made) to the daemon's account."""
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if mode is not None:
            os.chmod(path, mode)


def prepare_runtime(work_dir):
    """The runtime to serve from; builds the cached venv or copies the code into ``work_dir`` if needed."""
    if not apxs():
        raise Unavailable("Apache development files not found (apt-get install apache2-dev)")
    if not (shutil.which("apache2") or shutil.which("httpd") or Path("/usr/sbin/apache2").exists()):
        raise Unavailable("Apache not found (apt-get install apache2)")
    user, group = daemon_account()
    python = sys.executable
    if not can_serve(python, user, REPO):
        if user is None:
            raise Unavailable(f"mod_wsgi is not installed in {sys.prefix} (pip install -r requirements-wsgi.txt)")
        python = cached_venv(user)
    code = REPO
    if not can_serve(python, user, REPO):
        code = copy_checkout(Path(work_dir) / "code")
        if not can_serve(python, user, code):
            raise Unavailable(f"{user} cannot run {python} with the code in {code}")
    return Runtime(python, code, user, group)


def trusted_cache():
    """``CACHE``, created if missing; refuses a directory others could have planted code in."""
    CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
    info = CACHE.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise Unavailable(f"{CACHE} must belong to uid {os.geteuid()} and be writable by it alone")
    return CACHE


def system_python(user):
    for candidate in SYSTEM_PYTHONS:
        if Path(candidate).exists() and run_as(user, [candidate, "-c", "import venv, ensurepip"]).returncode == 0:
            return candidate
    tried = ", ".join(SYSTEM_PYTHONS)
    raise Unavailable(f"no Python that {user} can run: tried {tried} (apt-get install python3-venv)")


def cached_venv(user):
    """A world-readable venv with the runtime requirements and mod_wsgi, built once per requirement set."""
    base = system_python(user)
    version = subprocess.run([base, "-c", "import sys; print(sys.version)"], capture_output=True, text=True).stdout
    digest = hashlib.sha256(f"{base}\n{version}".encode())
    for name in REQUIREMENTS:
        digest.update((REPO / name).read_bytes())
    venv = trusted_cache() / f"runtime-{digest.hexdigest()[:12]}"
    python = venv / "bin" / "python"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return str(python)
        shutil.rmtree(venv, ignore_errors=True)
        print(f"Building the mod_wsgi runtime in {venv} (once) ...", file=sys.stderr, flush=True)
        steps = [
            [base, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REPO / REQUIREMENTS[0])],
            # Never a cached wheel: it may be linked against another Python's libpython.
            [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", "-r", str(REPO / REQUIREMENTS[1])],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, umask=0o022)
            if result.returncode:
                raise Unavailable(f"building the runtime failed: {' '.join(step)}\n{result.stdout}\n{result.stderr}")
        (venv / ".complete").touch()
    return str(python)


def copy_checkout(dest):
    """Copy the checkout's files (tracked and untracked-but-not-ignored, as in the working tree) to ``dest``."""
    listing = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
    )
    if listing.returncode:
        raise Unavailable(f"cannot list the checkout's files: {listing.stderr.strip()}")
    old = os.umask(0o022)
    try:
        for name in filter(None, listing.stdout.split("\0")):
            source = REPO / name
            if source.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / name)
                os.chmod(dest / name, 0o755 if os.access(source, os.X_OK) else 0o644)
    finally:
        os.umask(old)
    return dest


def vhost_defines(path=VHOST):
    """The vhost's ``Define NAME VALUE`` lines, as a dict."""
    defines = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[0] == "Define":
            defines[parts[1]] = parts[2]
    return defines


def import_max_bytes(env):
    """``CONSOLE_IMPORT_MAX_BYTES`` as ``console.settings`` reads it from the server's environment."""
    return int(env.get("CONSOLE_IMPORT_MAX_BYTES", 50 * 1024 * 1024))


def limit_options(env, path=VHOST):
    """mod_wsgi-express options for the vhost's time-outs and limits; the body limit follows ``env``'s import limit.

    A file just over ``CONSOLE_IMPORT_MAX_BYTES`` must reach Django (its form error names the limit), so
    Apache's limit is the import limit plus the vhost's room for the multipart envelope.
    """
    define = {name.removeprefix("CONSOLE_"): value for name, value in vhost_defines(path).items()}
    options = {
        "--request-timeout": define["REQUEST_TIMEOUT"],
        "--graceful-timeout": define["GRACEFUL_TIMEOUT"],
        "--shutdown-timeout": define["SHUTDOWN_TIMEOUT"],
        "--socket-timeout": define["SOCKET_TIMEOUT"],  # also Apache's Timeout, as in the vhost
        "--response-socket-timeout": define["RESPONSE_SOCKET_TIMEOUT"],
        "--queue-timeout": define["QUEUE_TIMEOUT"],
        "--header-timeout": define["HEADER_TIMEOUT"],
        "--header-max-timeout": define["HEADER_MAX_TIMEOUT"],
        "--header-min-rate": define["MIN_RATE"],
        "--body-timeout": define["BODY_TIMEOUT"],
        "--body-min-rate": define["MIN_RATE"],
        "--keep-alive-timeout": define["KEEP_ALIVE_TIMEOUT"],
        "--limit-request-body": str(import_max_bytes(env) + int(define["UPLOAD_ENVELOPE"])),
    }
    return [item for pair in options.items() for item in pair]


def free_port(host="127.0.0.1"):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def session_processes(session_id, marker=None):
    """PIDs of live processes in session ``session_id``, or whose command line mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        if state != "Z" and (int(session) == session_id or (marker and marker in cmdline)):
            found.append(int(entry.name))
    return found


class Server:
    """One mod_wsgi-express server (daemon mode) started through ``manage.py runmodwsgi``."""

    def __init__(self, runtime, server_root, *, env, host="127.0.0.1", port=None, processes=2, threads=4, log=None):
        self.runtime, self.server_root = runtime, Path(server_root)
        self.host, self.port = host, port or free_port(host)
        self.processes, self.threads = processes, threads
        self.env, self.log = env, log
        self.process = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def command(self):
        argv = [self.runtime.python, str(self.runtime.code / "manage.py"), "runmodwsgi"]
        argv += ["--host", self.host, "--port", str(self.port)]
        argv += ["--processes", str(self.processes), "--threads", str(self.threads)]
        argv += ["--server-root", str(self.server_root), "--working-directory", str(self.runtime.code)]
        argv += ["--python-path", str(self.runtime.code), "--locale", "C.UTF-8", "--log-to-terminal"]
        argv += ["--startup-timeout", "30", *limit_options(self.env)]
        argv += ["--max-clients", str(MAX_CLIENTS), "--initial-workers", "1", "--maximum-spare-workers", "1"]
        argv += ["--url-alias", "/console-errors", str(self.runtime.code / "deploy" / "apache" / "errors")]
        for status, page in ERROR_PAGES.items():
            argv += ["--error-document", str(status), f"/console-errors/{page}"]
        if self.runtime.user:
            argv += ["--user", self.runtime.user, "--group", self.runtime.group]
        return argv

    def start(self):
        """Start in a session of its own (so we can find every process it forks); returns at once."""
        self.server_root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.server_root, 0o755)  # the daemon reads its handler script from here
        env = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", **self.env}
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.runtime.code,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log is not None else None,
            start_new_session=True,
        )
        return self

    def wait_ready(self, path="/users/login/", timeout=60):
        """Poll ``path`` until it answers 200; returns the seconds it took."""
        started = time.monotonic()
        last = "no answer"
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise ServerError(f"the server exited with {self.process.returncode}\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as response:
                    if response.status == 200:
                        return time.monotonic() - started
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as error:
                last = f"HTTP {error.code}"
            except (urllib.error.URLError, OSError) as error:
                last = str(error)
            time.sleep(0.2)
        raise ServerError(f"{self.url}{path} not ready after {timeout}s ({last})\n{self.log_tail()}")

    def daemon_pids(self):
        """PIDs of the mod_wsgi daemon processes (display name ``(wsgi:<group>)``)."""
        pids = []
        for pid in session_processes(self.process.pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"(wsgi:"):
                    pids.append(pid)
        return pids

    def stop(self, timeout=30):
        """SIGTERM to the Apache parent, wait, and make sure nothing of the server is left; returns seconds."""
        started = time.monotonic()
        if self.process is None:
            return 0.0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while (left := session_processes(self.process.pid, str(self.server_root))) and time.monotonic() < deadline:
            time.sleep(0.2)
        if left:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(5)
            raise ServerError(f"processes left after SIGTERM (killed): {left}\n{self.log_tail()}")
        return time.monotonic() - started

    def log_tail(self, lines=60):
        name = getattr(self.log, "name", None)
        if not isinstance(name, str) or not Path(name).exists():
            return ""
        return "--- server log (tail) ---\n" + "\n".join(Path(name).read_text(errors="replace").splitlines()[-lines:])


# -- make run ----------------------------------------------------------------------------------------------------


def daemon_can_write(runtime, path):
    check = f"import os, sys; sys.exit(not os.access({str(path)!r}, os.W_OK | os.X_OK))"
    return run_as(runtime.user, [runtime.python, "-c", check]).returncode == 0


def writable_state(runtime, var_dir):
    """As root, the daemon's account must write the SQLite files in ``var_dir``; hand the directory over."""
    if runtime.user is None or daemon_can_write(runtime, var_dir):
        return
    reach = f"import os, sys; sys.exit(not os.access({str(var_dir)!r}, os.R_OK | os.X_OK))"
    if run_as(runtime.user, [runtime.python, "-c", reach]).returncode:
        raise Unavailable(f"{runtime.user} cannot reach {var_dir}; set CONSOLE_VAR_DIR outside a private home")
    print(f"Handing {var_dir} to {runtime.user}, who runs the daemon processes.", file=sys.stderr)
    entry = pwd.getpwnam(runtime.user)
    for root, dirs, files in os.walk(var_dir):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def start_worker(python, code, env, user=None):
    """The background worker (``manage.py db_worker``: big imports and exports), as the daemon's account.

    It runs beside the server for as long as ``make run`` does, in a session of its own; ``stop_worker`` ends it.
    """
    kwargs = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    argv = [python, str(Path(code) / "manage.py"), "db_worker", "--no-reload", "--queue-name", "default"]
    return subprocess.Popen(argv, cwd=code, env=env, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)


def stop_worker(worker, timeout=30):
    """SIGTERM: the worker finishes the task it is running, up to ``timeout`` seconds; then SIGKILL (which rolls an
    import back: it is one transaction)."""
    if worker is None or worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(5)


def serve(host, port, processes, threads):
    """``make run``: serve var/'s databases with mod_wsgi-express until interrupted."""
    var_dir = Path(os.environ.get("CONSOLE_VAR_DIR", REPO / "var")).resolve()
    work_dir = Path(tempfile.mkdtemp(prefix="run-", dir=trusted_cache() if os.geteuid() == 0 else None))
    os.chmod(work_dir, 0o755)
    try:
        runtime = prepare_runtime(work_dir)
        writable_state(runtime, var_dir)
        env = {**os.environ, "CONSOLE_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "console.settings"}
        runtime.manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
        server = Server(runtime, work_dir / "server", env=env, host=host, port=port)
        server.processes, server.threads = processes, threads
        server.start()
        worker = None
        # `kill <pid>` stops the server as Ctrl-C does: it runs in a session of its own and would be left behind.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            seconds = server.wait_ready()
            worker = start_worker(runtime.python, runtime.code, env, runtime.user)
            who = f" as {runtime.user}" if runtime.user else ""
            print(f"mod_wsgi-express, daemon mode, {processes} processes{who}: ready in {seconds:.1f}s (Ctrl-C stops).")
            print(f"Background worker (big imports and exports): manage.py db_worker, pid {worker.pid}.")
            server.process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop_worker(worker)
            server.stop()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
