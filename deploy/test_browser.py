"""A real browser (Debian's headless Chromium, driven by Selenium): every feature's
Swagger UI renders its OpenAPI 3.1 document, grouped by tag, with no CSP violation;
"Try it out" works, and one Authorize serves all three docs pages, across reloads;
CORS lets a page from an allowed origin call the API (and read the headers the
documents describe) while blocking one from elsewhere.

Needs Debian's chromium and chromium-driver (.ci/run installs them)."""

import functools
import http.server
import os
import shutil
import tempfile
import threading

import flask_migrate
import pytest
import requests

from myapp.throwaway import wsgi_server
from myapp.testing import migratable_app
from myapp.cli import DEMO_PASSWORD

CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMEDRIVER and shutil.which("chromium")),
    reason="needs chromium and chromium-driver (apt-get install chromium-driver)",
)
FETCH_PAGE = """<!doctype html><html><body><pre id="result">pending</pre><script>
const show = (text) => { result.textContent = text; };
fetch("%s/books/")
  .then(r => r.json().then(b => show("status " + r.status + " total " + b.total)))
  .catch(e => show("blocked: " + e.name));
</script></body></html>"""
# Signs in, borrows twice with one Idempotency-Key, and shows what script can read.
BORROW_PAGE = """<!doctype html><html><body><pre id="result">pending</pre><script>
const api = "%s", json = {"Content-Type": "application/json"};
const show = (text) => { result.textContent = text; };
(async () => {
  const signIn = await fetch(api + "/users/tokens", {method: "POST", headers: json,
    body: JSON.stringify({email: "member@example.com", password: "%s"})});
  const token = (await signIn.json()).access_token;
  const books = await (await fetch(api + "/books/?q=Gatsby")).json();
  const borrow = () => fetch(api + "/books/" + books.items[0].id + "/loans", {
    method: "POST",
    headers: {Authorization: "Bearer " + token, "Idempotency-Key": "browser-1"}});
  const first = await borrow(), again = await borrow();
  show([first.status, again.status, again.headers.get("Idempotent-Replayed"),
        first.headers.get("Location"), first.headers.get("ETag") ? "etag" : "none"]
       .join(" "));
})().catch(e => show("failed: " + e));
</script></body></html>"""


def serve_page(directory: str, html: str):
    """A static page on 127.0.0.1 at a port of its own: an origin of its own."""
    with open(os.path.join(directory, "index.html"), "w") as handle:
        handle.write(html)
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=directory
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def pages(workdir):
    allowed_dir = tempfile.mkdtemp(dir=workdir)
    other_dir = tempfile.mkdtemp(dir=workdir)
    allowed, allowed_origin = serve_page(allowed_dir, "")
    other, other_origin = serve_page(other_dir, "")
    yield {"allowed": (allowed_dir, allowed_origin), "other": (other_dir, other_origin)}
    allowed.shutdown()
    other.shutdown()


@pytest.fixture(scope="module")
def api(workdir, redis_url, pages):
    """gunicorn on a fresh SQLite database with the demo data; the allowed page's
    origin is the one CORS_ORIGINS names."""
    from myapp.cli import load_demo_data
    from myapp.db import sql

    database = f"sqlite:///{tempfile.mkdtemp(dir=workdir)}/browser.db"
    app = migratable_app(database, redis_url)
    with app.app_context():
        flask_migrate.upgrade()
        load_demo_data()
        sql.engine.dispose()
    with wsgi_server(
        workdir,
        workers=2,
        DATABASE_URL=database,
        REDIS_URL=redis_url,
        CORS_ORIGINS=pages["allowed"][1],
        RATELIMIT_DEFAULT="100000 per hour",
    ) as base:
        yield base


@pytest.fixture(scope="module")
def browser(workdir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tempfile.mkdtemp(dir=workdir)}",
        "--window-size=1280,2000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(browser, condition, seconds: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds).until(condition)


def csp_violations(browser) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]


@pytest.mark.parametrize(
    "feature, operations, tags",
    [
        ("users", 12, ["tokens", "profile", "sessions", "users"]),
        ("books", 11, ["books", "loans"]),
        ("sites", 25, ["sites", "freezers", "computers", "containers", "instruments"]),
    ],
)
def test_each_swagger_ui_renders_its_openapi_3_1_document(
    api, browser, feature, operations, tags
):
    from selenium.webdriver.common.by import By

    browser.get(f"{api}/{feature}/docs")
    wait(
        browser,
        lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) == operations,
    )
    shown = [
        tag.text.split("\n")[0]
        for tag in browser.find_elements(By.CSS_SELECTOR, ".opblock-tag")
    ]
    assert [text.split()[0] for text in shown] == tags  # grouped by resource
    assert "OAS 3.1" in browser.find_element(By.CSS_SELECTOR, ".info").text
    assert not csp_violations(browser)


def try_it_out(browser, block_id: str) -> str:
    """Open an operation, Try it out, Execute: the live response's status."""
    from selenium.webdriver.common.by import By

    block = wait(browser, lambda b: b.find_element(By.ID, block_id))
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait(
        browser, lambda b: block.find_element(By.CSS_SELECTOR, ".try-out__btn")
    ).click()
    wait(browser, lambda b: block.find_element(By.CSS_SELECTOR, ".execute")).click()

    def live_status(_browser):
        cells = block.find_elements(
            By.CSS_SELECTOR, ".live-responses-table .response-col_status"
        )
        return [cell.text.strip() for cell in cells][1:]  # [0] is the heading

    return wait(browser, live_status)[0]


def test_try_it_out_on_a_public_get(api, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{api}/books/docs")
    assert try_it_out(browser, "operations-books-get_popular") == "200"
    body = browser.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight")
    assert '"Dracula"' in body.text


def test_one_authorize_serves_every_docs_page_and_survives_a_reload(api, browser):
    from selenium.webdriver.common.by import By

    token = requests.post(
        f"{api}/users/tokens",
        json={"email": "member@example.com", "password": DEMO_PASSWORD},
    ).json()["access_token"]
    browser.get(f"{api}/users/docs")
    browser.execute_script("window.localStorage.clear()")
    browser.refresh()
    assert try_it_out(browser, "operations-profile-get_me") == "401"

    wait(
        browser, lambda b: b.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize")
    ).click()
    dialog = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".modal-ux"))
    # The schemes' descriptions read as text, not as swallowed markup.
    assert "access_token from POST /users/tokens" in dialog.text
    access = next(
        box
        for box in dialog.find_elements(By.CSS_SELECTOR, ".auth-container")
        if "accessToken" in box.text
    )
    access.find_element(By.CSS_SELECTOR, "input").send_keys(token)
    access.find_element(By.CSS_SELECTOR, "button.authorize").click()
    dialog.find_element(By.CSS_SELECTOR, "button.close-modal").click()

    browser.get(f"{api}/books/docs")
    assert try_it_out(browser, "operations-loans-get_loans") == "200"
    browser.get(f"{api}/sites/docs")
    assert try_it_out(browser, "operations-sites-get_sites") == "200"
    browser.refresh()
    assert try_it_out(browser, "operations-instruments-get_instruments") == "200"
    assert not csp_violations(browser)


def test_a_browser_page_reads_the_replay_flag_and_the_new_loan(api, browser, pages):
    from selenium.webdriver.common.by import By

    directory, page_origin = pages["allowed"]
    with open(os.path.join(directory, "borrow.html"), "w") as handle:
        handle.write(BORROW_PAGE % (api, DEMO_PASSWORD))
    browser.get(f"{page_origin}/borrow.html")
    result = browser.find_element(By.ID, "result")
    wait(browser, lambda b: result.text != "pending")
    first, again, replayed, location, etag = result.text.split()
    assert (first, again, replayed, etag) == ("201", "201", "true", "etag")
    assert location.startswith("/books/loans/")


@pytest.mark.parametrize(
    "origin, expected",
    [("allowed", "status 200 total 16"), ("other", "blocked: TypeError")],
)
def test_cors_lets_only_the_allowed_origin_call_the_api(
    api, browser, pages, origin, expected
):
    from selenium.webdriver.common.by import By

    directory, page_origin = pages[origin]
    with open(os.path.join(directory, "index.html"), "w") as handle:
        handle.write(FETCH_PAGE % api)
    browser.get(f"{page_origin}/index.html")
    result = browser.find_element(By.ID, "result")
    wait(browser, lambda b: result.text != "pending")
    assert result.text == expected
