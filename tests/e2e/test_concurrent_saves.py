"""Two staff members save one customer at the same moment, through the served console's two daemon processes.

Each round: both open the change form, then both save at once (a barrier
releases the two POSTs together), one changing the name, the other the notes.
Exactly one save wins; the other gets the conflict page and writes nothing; the
loser reloads and saves again, and then both edits are in the row.  The figures
(wins, conflicts, lost edits, processes seen) go to the e2e summary line.
"""

import threading

from tests.e2e.conftest import TIMINGS

CUSTOMERS = "/customers/customers/customer/"
ROUNDS = 8
CONFLICT = "Someone else changed this customer after you opened it"


def add_customer(client, email):
    page = client.get(CUSTOMERS + "add/")
    assert page.status == 200
    fields = {"name": "Race Condition", "email": email, "country": "DE", "status": "active", "tier": "standard"}
    response = client.submit(page, CUSTOMERS + "add/", fields, form_id="customer_form")
    assert response.status == 302, response.text[:2000]


def save_at_once(url, pages, edits):
    """Post each client's form (from its page, with its edits) at the same moment; their answers."""
    answers, barrier = {}, threading.Barrier(len(pages))

    def save(client):
        data = pages[client].form("customer_form")
        data.update(edits[client])
        data["_save"] = "Save"
        barrier.wait()
        answers[client] = client.post(url, data)

    threads = [threading.Thread(target=save, args=(client,)) for client in pages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_two_concurrent_saves_one_wins_the_other_is_told_and_no_edit_is_lost(console):
    alice, bob = console.admin(), console.admin()
    email = "e2e-race@example.com"
    add_customer(alice, email)
    ((pk,),) = console.rows("customers", "SELECT id FROM customers_customer WHERE email = %s", email)
    url = f"{CUSTOMERS}{pk}/change/"
    wins = conflicts = lost = 0
    processes = set()

    for number in range(ROUNDS):
        pages = {alice: alice.get(url), bob: bob.get(url)}
        assert all(page.status == 200 for page in pages.values())
        edits = {alice: {"name": f"Alice's name {number}"}, bob: {"notes": f"Bob's note {number}"}}
        answers = save_at_once(url, pages, edits)
        processes |= {answer.pid for answer in answers.values() if answer.pid}

        statuses = sorted(answer.status for answer in answers.values())
        assert statuses == [200, 302], statuses  # exactly one wins; never a 500
        winner = next(client for client, answer in answers.items() if answer.status == 302)
        loser = bob if winner is alice else alice
        assert CONFLICT in answers[loser].text
        wins, conflicts = wins + 1, conflicts + 1

        ((name, notes),) = console.rows("customers", "SELECT name, notes FROM customers_customer WHERE id = %s", pk)
        field, value = next(iter(edits[winner].items()))
        assert {"name": name, "notes": notes}[field] == value  # the winner's edit is in
        loser_field, loser_value = next(iter(edits[loser].items()))
        assert {"name": name, "notes": notes}[loser_field] != loser_value  # the refused one wrote nothing

        # The loser reloads and saves again: both edits are kept.
        again = loser.submit(loser.get(url), url, {**edits[loser], "_save": "Save"}, form_id="customer_form")
        assert again.status == 302, again.text[:2000]
        ((name, notes),) = console.rows("customers", "SELECT name, notes FROM customers_customer WHERE id = %s", pk)
        stored = {"name": name, "notes": notes}
        lost += sum(stored[f] != v for edit in edits.values() for f, v in edit.items())

    TIMINGS["concurrent saves"] = f"{ROUNDS} rounds: {wins} won, {conflicts} refused, {lost} lost"
    TIMINGS["processes answering"] = len(processes)
    assert lost == 0
