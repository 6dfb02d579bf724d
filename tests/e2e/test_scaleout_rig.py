"""The scale-out rig (tests/cluster.py) with today's console: a GTID replica, two app hosts behind nginx.

The rig is real: two ``mariadbd`` (primary -> replica), two mod_wsgi-express hosts on 127.0.0.2 and
127.0.0.3 sharing sessions, uploads, Redis cache and secret key, nginx on 127.0.0.4.  These tests prove the
rig does what the scale-out tests (issue 18) will stand on: replication that a stopped SQL thread holds
back, a session that follows the user from host to host, an import whose steps land on different hosts,
and a killed host whose requests the balancer hands to the other.
"""

import shutil
import time
import uuid
from pathlib import Path

import pytest

from admin_site.express import Unavailable
from tests.cluster import INSTALL_DB, MARIADBD, NGINX, Rig
from tests.e2e.conftest import TIMINGS, missing

CUSTOMERS = "/customers/customers/customer/"


@pytest.fixture(scope="module")
def rig(request):
    for program in (MARIADBD, NGINX):
        if not Path(program).exists():
            missing(f"{program} not found (apt-get install mariadb-server nginx)")
    if not shutil.which(INSTALL_DB):
        missing(f"{INSTALL_DB} not found (apt-get install mariadb-server)")
    rig = Rig(prefix="rig")
    started = time.monotonic()
    try:
        rig.start()
    except Unavailable as reason:
        missing(str(reason))
    rig.timings["ready"] = round(time.monotonic() - started, 2)
    rig.timings.shown_in(TIMINGS, "rig ")  # the e2e summary line: each piece's start-up, then restarts and stop
    yield rig
    rig.stop()


def upstream(response):
    """The app host that answered through the balancer (the last one nginx tried)."""
    return response.headers["X-Upstream"].split(",")[-1].strip()


def test_replica_follows_the_primary_and_lags_while_its_sql_thread_is_stopped(rig):
    pair = rig.pair
    pair.create_database("console_rig_probe")
    pair.primary_sql("CREATE TABLE probe (id INT PRIMARY KEY, note VARCHAR(40))", database="console_rig_probe")
    writer = pair.app_connect("primary", "console_rig_probe")
    insert = "INSERT INTO probe VALUES (%s, %s)"
    find = "SELECT note FROM probe WHERE id = %s"
    try:
        with writer.cursor() as cursor:
            cursor.execute(insert, (1, "replicated"))
        pair.wait_caught_up(30)
        assert pair.replica_sql(find, 1, database="console_rig_probe") == (("replicated",),)

        pair.stop_sql_thread()
        with writer.cursor() as cursor:
            cursor.execute(insert, (2, "held back"))
        # The replica receives the event (its IO thread runs) but does not apply it.
        (log_position,) = pair.primary_sql("SHOW MASTER STATUS")[0][1:2]
        deadline = time.monotonic() + 10
        while pair.slave_status()["Read_Master_Log_Pos"] != log_position:
            assert time.monotonic() < deadline, pair.slave_status()
            time.sleep(0.05)
        assert pair.replica_sql(find, 2, database="console_rig_probe") == ()
        assert pair.primary_sql(find, 2, database="console_rig_probe") == (("held back",),)
    finally:
        pair.start_sql_thread()
        writer.close()
    pair.wait_caught_up(30)
    assert pair.replica_sql(find, 2, database="console_rig_probe") == (("held back",),)
    # The console's user cannot write on the replica (read_only binds it).
    reader = pair.app_connect("replica", "console_rig_probe")
    try:
        with pytest.raises(Exception, match="read-only"), reader.cursor() as cursor:
            cursor.execute(insert, (3, "refused"))
    finally:
        reader.close()
    pair.primary_sql("DROP DATABASE console_rig_probe")


def test_a_session_follows_the_user_across_both_hosts(rig):
    client = rig.admin()
    tag = uuid.uuid4().hex[:8]
    answered = {}
    for n in range(6):
        path = f"{CUSTOMERS}?q=session-{tag}-{n}"
        page = client.get(path)
        assert page.status == 200, (page.status, page.location)  # a host without the session redirects to login
        assert "e2e-admin" in page.text and 'id="changelist"' in page.text
        answered[f"GET {path} HTTP/1.1"] = upstream(page)
    assert set(answered.values()) == {host.upstream for host in rig.hosts}, answered
    # nginx's access log names the same hosts for the same requests (it is written just after each answer).
    deadline = time.monotonic() + 5
    while True:
        logged = {request: tried[-1] for request, tried in rig.balancer.log_entries() if request in answered}
        if len(logged) == len(answered) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert logged == answered


def customers_csv(tag, rows=3):
    lines = ["name,email,country,status,tier"]
    lines += [f"Rig {tag} {i},rig-{tag}-{i}@example.com,DE,active,gold" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_an_import_previewed_on_one_host_is_confirmed_on_the_other(rig):
    client = rig.admin()
    for _attempt in range(10):
        tag = uuid.uuid4().hex[:8]
        form = client.get(CUSTOMERS + "import/")
        assert form.status == 200
        preview = client.submit(
            form,
            CUSTOMERS + "import/",
            {"format": form.option("format", "csv")},
            files={"import_file": (f"rig-{tag}.csv", customers_csv(tag))},
        )
        assert preview.status == 200 and "3 new" in preview.text, preview.text[-2000:]
        confirm = client.submit(preview, CUSTOMERS + "process_import/", form_id=None)
        assert confirm.status == 302, confirm.text[-2000:]
        if upstream(preview) != upstream(confirm):
            break
    else:
        raise AssertionError("10 imports, preview and confirm always on the same host")
    emails = {
        e for (e,) in rig.rows("customers", "SELECT email FROM customers_customer WHERE email LIKE %s", f"rig-{tag}-%")
    }
    assert emails == {f"rig-{tag}-{i}@example.com" for i in range(3)}


def test_a_killed_host_leaves_the_user_on_the_other_with_the_session(rig):
    client = rig.admin()
    first = client.get(CUSTOMERS)
    assert first.status == 200
    victim = rig.host(upstream(first))
    survivor = next(host for host in rig.hosts if host is not victim)
    rig.kill_host(victim)
    try:
        assert not victim.alive
        for _ in range(4):  # round-robin would send half of these to the dead host
            page = client.get(CUSTOMERS)
            assert page.status == 200, (page.status, page.location)
            assert upstream(page) == survivor.upstream
            assert "e2e-admin" in page.text  # still logged in
    finally:
        rig.restart_host(victim)
    # Back in the rotation (once nginx's fail_timeout has passed): the rig is whole for whoever comes next.
    deadline = time.monotonic() + 30
    while upstream(page := client.get(CUSTOMERS)) != victim.upstream:
        assert page.status == 200
        assert time.monotonic() < deadline, "the restarted host never answered through the balancer"
        time.sleep(0.5)
    assert page.status == 200
