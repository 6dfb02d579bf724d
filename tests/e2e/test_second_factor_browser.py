"""The second factor in Debian's Chromium against the console under mod_wsgi: enrol through the QR page, log in again.

Every panel of the e2e server requires a code (``tests/e2e/server_settings.py``).  ``e2e-enrol`` has no
device yet: the browser logs in, is led to enrolment, reads the secret shown beside the QR code, answers
with the code pyotp computes from it, gets the backup codes, and later logs in with one of them.
"""

import pyotp

from tests.e2e import test_browser

# Chromium on a fresh profile, as the other browser test launches it (module-scoped there and here).
page = test_browser.page
shot = test_browser.shot


def log_in(page, console, panel):
    page.goto(f"/{panel}/")
    page.fill("#id_username", "e2e-enrol")
    page.fill("#id_password", console.password)
    page.click("input[type=submit]")


def test_enrolment_through_the_qr_page_then_a_backup_code(console, page, shot):
    log_in(page, console, "users")
    page.wait_for_url("**/users/otp/enrol/**")
    assert page.locator("#otp-qr svg").count() == 1
    shot("otp-01-enrol")
    secret = page.inner_text("#otp-secret").replace(" ", "")
    page.fill("#id_code", pyotp.TOTP(secret).now())
    page.click("#otp-form input[type=submit]")
    codes = [code.strip() for code in page.locator("#otp-backup-codes code").all_inner_texts()]
    assert len(codes) == 10 and all(len(code) == 8 for code in codes)
    shot("otp-02-backup-codes")
    page.click("#otp-continue")
    page.wait_for_url("**/users/")
    assert page.locator("#panel-band").get_attribute("data-database") == "users"

    # Another panel: the session is already verified.
    page.goto("/customers/")
    assert page.locator("#panel-band").get_attribute("data-database") == "customers"
    assert "/otp/" not in page.url

    # Log out, log in again on the customers panel: the code page takes a backup code.
    page.click("#logout-form button")
    page.context.clear_cookies()
    log_in(page, console, "customers")
    page.wait_for_url("**/customers/otp/verify/**")
    page.fill("#id_code", codes[0])
    page.click("#otp-form input[type=submit]")
    page.wait_for_url("**/customers/")
    assert page.locator("#panel-band").get_attribute("data-database") == "customers"
    (remaining,) = console.rows(
        "users",
        "SELECT COUNT(*) FROM otp_static_statictoken t JOIN otp_static_staticdevice d ON d.id = t.device_id "
        "JOIN auth_user u ON u.id = d.user_id WHERE u.username = %s",
        "e2e-enrol",
    )[0]
    assert remaining == 9
