"""Scale-out (issue 18) on a real rig (tests/cluster.py): a GTID replica per panel, two app hosts behind nginx.

The rig: two ``mariadbd`` (primary -> replica), two mod_wsgi-express hosts on 127.0.0.2 and 127.0.0.3
sharing sessions, uploads, Redis cache and secret key, nginx on 127.0.0.4; every host reads each panel's
replica (``CONSOLE_DB_<ALIAS>_REPLICAS``).  First the rig itself: replication that a stopped SQL thread holds
back, a session that follows the user from host to host, an import whose steps land on different hosts, and a
killed host whose requests the balancer hands to the other.  Then the console on it: lists read the replica,
a user sees their own save at once while the replica applies nothing, a unique check is never fooled by the
replica, no write statement reaches the replica, a killed replica costs no request an error, and a restarted
one is used again once healthy.  Which server answered a list is read off the servers' own statement counters.
"""

import re
import shutil
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from admin_site.express import Unavailable, start_worker, stop_worker
from tests.cluster import INSTALL_DB, MARIADBD, NGINX, Rig
from tests.e2e.conftest import TIMINGS, missing
from tests.utils import WRITE

CUSTOMERS = "/customers/customers/customer/"


@pytest.fixture(scope="module")
def rig(request):
    for program in (MARIADBD, NGINX):
        if not Path(program).exists():
            missing(f"{program} not found (apt-get install mariadb-server nginx)")
    if not shutil.which(INSTALL_DB):
        missing(f"{INSTALL_DB} not found (apt-get install mariadb-server)")
    # A replica's health is checked at most every 2 s here (5 s by default), so a restarted one is back soon.
    # Imports of more than 100 rows go to the background worker (the other tests' files have 3).
    env = {"CONSOLE_REPLICA_HEALTH_SECONDS": "2", "CONSOLE_BACKGROUND_IMPORT_ROWS": "100"}
    rig = Rig(prefix="rig", replicas=True, extra_env=env)
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
        preview = client.preview_import(CUSTOMERS, f"rig-{tag}.csv", customers_csv(tag))
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


def test_a_background_import_runs_on_one_hosts_worker_and_is_followed_and_confirmed_through_both_hosts(rig):
    """The queue is in the users database and the upload in the shared directory: host A's worker takes the job
    whichever host queued it, and its progress page, confirm and result answer from either host."""
    worker = start_worker(rig.runtime.python, rig.runtime.code, rig.host_env(0), rig.runtime.user)
    try:
        client = rig.admin()
        tag = uuid.uuid4().hex[:8]
        queued = client.preview_import(CUSTOMERS, f"bg-{tag}.csv", customers_csv(tag, rows=150))
        assert queued.status == 302 and f"{CUSTOMERS}transfers/" in queued.location, queued.text[-1000:]
        progress = urllib.parse.urlsplit(queued.location).path
        answered = set()

        def follow(until):
            deadline = time.monotonic() + 120
            while True:
                page = client.get(progress)
                assert page.status == 200, (page.status, page.location)
                answered.add(upstream(page))
                status = re.search(r'data-status="(\w+)"', page.text).group(1)
                if status in until:
                    return status, page
                assert time.monotonic() < deadline, f"the transfer is still {status}"
                time.sleep(0.3)

        status, page = follow({"previewed", "rejected", "failed"})
        assert status == "previewed" and "150 new" in page.text, page.text[-2000:]
        assert client.submit(page, progress + "confirm/").status == 302
        status, page = follow({"done", "failed", "cancelled"})
        assert status == "done", page.text[-2000:]
        query = "SELECT COUNT(*) FROM customers_customer WHERE email LIKE %s"
        assert rig.rows("customers", query, f"rig-{tag}-%") == ((150,),)
        for _ in range(2):  # round-robin: the finished page from each host, whichever served the steps above
            assert follow({"done"})[0] == "done"
        assert answered == {host.upstream for host in rig.hosts}, answered
    finally:
        stop_worker(worker)


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


# The console on the rig: replicas ------------------------------------------------------------------------------


def counters(rig, which, names):
    placeholders = ", ".join(["%s"] * len(names))
    rows = rig.pair.server(which).sql(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({placeholders})", *names)
    return {name: int(value) for name, value in rows}


def selects(rig, which):
    return counters(rig, which, ("Com_select",))["Com_select"]


def list_reads_replica(rig, client, path):
    """GET ``path`` (a list): whether the replica answered its queries, told by the replica's SELECT counter.

    The replica's counter also moves with the console's health checks (SHOW, not SELECT) and
    MASTER_GTID_WAIT (a SELECT): a list read there runs several SELECTs, a wait one.
    """
    before = selects(rig, "replica")
    page = client.get(path)
    assert page.status == 200, (page.status, page.text[-500:])
    return selects(rig, "replica") - before >= 3, page


def change_name(client, pk, name):
    form = client.get(f"{CUSTOMERS}{pk}/change/")
    assert form.status == 200
    saved = client.submit(form, f"{CUSTOMERS}{pk}/change/", {"name": name, "_save": "Save"}, form_id="customer_form")
    assert saved.status == 302, saved.text[-2000:]


def a_customer(rig):
    ((pk, name),) = rig.rows("customers", "SELECT id, name FROM customers_customer ORDER BY id LIMIT 1")
    return pk, name


def test_lists_read_the_replica_and_a_users_own_save_is_seen_at_once_while_the_replica_applies_nothing(rig):
    client = rig.admin()
    rig.pair.wait_caught_up(30)
    assert any(list_reads_replica(rig, client, CUSTOMERS)[0] for _ in range(3)), "a list never read the replica"

    pk, name = a_customer(rig)
    rig.pair.stop_sql_thread()
    try:
        new_name = f"Seen at once {uuid.uuid4().hex[:6]}"
        change_name(client, pk, new_name)
        assert rig.rows("customers", "SELECT name FROM customers_customer WHERE id = %s", pk, on="replica") == (
            (name,),
        )
        # The next pages, on whichever host: the list (it would read the replica) and the change form show it.
        for _ in range(4):
            page = client.get(f"{CUSTOMERS}?q={new_name.split()[-1]}")
            assert page.status == 200 and new_name in page.text, "the list read a replica without the user's save"
            assert new_name in client.get(f"{CUSTOMERS}{pk}/change/").text
    finally:
        rig.pair.start_sql_thread()
    rig.pair.wait_caught_up(30)
    # Caught up: the user's lists read the replica again (it holds their write now).
    deadline = time.monotonic() + 20
    while not (found := list_reads_replica(rig, client, f"{CUSTOMERS}?q={new_name.split()[-1]}"))[0]:
        assert time.monotonic() < deadline, "the replica was not used again after catching up"
        time.sleep(0.5)
    assert new_name in found[1].text


def test_read_your_writes_a_delayed_replica_serves_others_while_the_writer_reads_the_primary(rig):
    """Replication delayed 8 s (MASTER_DELAY): the replica stays healthy and serves lists, so only the session's
    GTID position (MASTER_GTID_WAIT) keeps the writer from reading their save's absence there."""
    writer, other = rig.admin(), rig.admin()
    pk, _name = a_customer(rig)
    rig.pair.replica_sql("STOP SLAVE")
    rig.pair.replica_sql("CHANGE MASTER TO MASTER_DELAY = 8")
    rig.pair.replica_sql("START SLAVE")
    try:
        new_name = f"Delayed {uuid.uuid4().hex[:6]}"
        change_name(writer, pk, new_name)
        search = f"{CUSTOMERS}?q={new_name.split()[-1]}"
        for _ in range(3):
            page = writer.get(search)
            assert page.status == 200 and new_name in page.text, "the writer read a replica without their save"
        used, page = list_reads_replica(rig, other, search)
        assert used and new_name not in page.text, "the other session reads the (healthy, delayed) replica"
        deadline = time.monotonic() + 30
        while not (found := list_reads_replica(rig, writer, search))[0]:
            assert time.monotonic() < deadline, "the writer never read the replica again once it had the save"
            time.sleep(0.5)
        assert new_name in found[1].text
    finally:
        rig.pair.replica_sql("STOP SLAVE")
        rig.pair.replica_sql("CHANGE MASTER TO MASTER_DELAY = 0")
        rig.pair.replica_sql("START SLAVE")
    rig.pair.wait_caught_up(30)


def test_a_unique_check_is_not_fooled_by_a_replica_without_the_row(rig):
    client = rig.admin()
    email = f"unique-{uuid.uuid4().hex[:8]}@example.com"
    rig.pair.stop_sql_thread()
    try:
        for attempt in range(2):
            form = client.get(f"{CUSTOMERS}add/")
            fields = {"name": f"Unique {attempt}", "email": email, "country": "DE", "_save": "Save"}
            answer = client.submit(form, f"{CUSTOMERS}add/", fields, form_id="customer_form")
            if attempt == 0:
                assert answer.status == 302, answer.text[-2000:]
        assert answer.status == 200, (answer.status, answer.text[-1000:])
        assert "errorlist" in answer.text and "already exists" in answer.text
        assert rig.rows("customers", "SELECT COUNT(*) FROM customers_customer WHERE email = %s", email) == ((1,),)
        assert rig.rows(
            "customers", "SELECT COUNT(*) FROM customers_customer WHERE email = %s", email, on="replica"
        ) == ((0,),)
    finally:
        rig.pair.start_sql_thread()
    rig.pair.wait_caught_up(30)


def console_statements(rig, which):
    """What the console's account sent to ``which`` server, from its general query log (on for the test)."""
    rows = rig.pair.server(which).sql(
        "SELECT argument FROM mysql.general_log WHERE command_type = 'Query' AND user_host LIKE %s",
        f"{rig.pair.app_user}[%",
    )
    return [bytes(argument).decode() if isinstance(argument, bytes) else argument for (argument,) in rows]


def test_no_write_statement_reaches_the_replica(rig):
    """Saves, an import, a delete and the history they write, through both hosts, with the replica serving lists:
    the replica's general query log holds the console's reads and not one write."""
    for which in ("replica", "primary"):
        rig.pair.server(which).sql("SET GLOBAL log_output = 'TABLE', general_log = 1")
        rig.pair.server(which).sql("TRUNCATE mysql.general_log")
    try:
        client = rig.admin()
        pk, _name = a_customer(rig)
        change_name(client, pk, f"Written {uuid.uuid4().hex[:6]}")
        tag = uuid.uuid4().hex[:8]
        preview = client.preview_import(CUSTOMERS, f"w-{tag}.csv", customers_csv(tag))
        assert client.submit(preview, CUSTOMERS + "process_import/", form_id=None).status == 302
        query = "SELECT id FROM customers_customer WHERE email = %s"
        ((victim,),) = rig.rows("customers", query, f"rig-{tag}-0@example.com")
        confirm = client.get(f"{CUSTOMERS}{victim}/delete/")
        assert client.submit(confirm, f"{CUSTOMERS}{victim}/delete/", {"post": "yes"}, form_id=None).status == 302
        rig.pair.wait_caught_up(30)
        for _ in range(4):
            assert client.get(f"{CUSTOMERS}?q=rig-{tag}").status == 200
        replica, primary = console_statements(rig, "replica"), console_statements(rig, "primary")
    finally:
        for which in ("replica", "primary"):
            rig.pair.server(which).sql("SET GLOBAL general_log = 0")
    assert any(sql.lstrip().upper().startswith("SELECT") and "customers_customer" in sql for sql in replica), replica
    assert [sql for sql in replica if WRITE.match(sql)] == []
    assert [sql for sql in primary if WRITE.match(sql)], "the log does show the console's writes (on the primary)"


def test_a_killed_replica_costs_no_request_an_error_and_is_used_again_once_healthy(rig):
    client = rig.admin()
    rig.pair.wait_caught_up(30)
    assert any(list_reads_replica(rig, client, CUSTOMERS)[0] for _ in range(3))
    rig.pair.kill_replica()
    try:
        statuses = [client.get(CUSTOMERS).status for _ in range(12)]
        statuses += [client.get(f"{CUSTOMERS}export/").status, client.get("/").status]
        assert statuses == [200] * len(statuses), statuses
        home = client.get("/")
        assert 'data-healthy="false"' in home.text and "skipped:" in home.text
    finally:
        rig.pair.start_replica()
    rig.pair.wait_caught_up(60)
    deadline = time.monotonic() + 30
    while not list_reads_replica(rig, client, CUSTOMERS)[0]:
        assert time.monotonic() < deadline, "the restarted replica was not used again"
        time.sleep(0.5)
    home = client.get("/")
    assert "serves lists and exports" in home.text
