"""A real browser (Debian's headless Chromium, driven by Selenium): every feature's
Swagger UI renders its operations, "Try it out" on a GET gets a 200, and CORS lets
a page from an allowed origin call the API while blocking one from elsewhere.

Needs Debian's chromium and chromium-driver (.ci/run installs them)."""

import functools
import http.server
import os
import shutil
import tempfile
import threading

import flask_migrate
import pytest

from conftest import gunicorn

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
    from myapp import create_app
    from myapp.cli import load_demo_data
    from myapp.db import sql

    database = f"sqlite:///{tempfile.mkdtemp(dir=workdir)}/browser.db"
    app = create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": database, "REDIS_URL": redis_url}
    )
    with app.app_context():
        flask_migrate.upgrade()
        load_demo_data()
        sql.engine.dispose()
    with gunicorn(
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
    "feature, operations", [("users", 12), ("books", 11), ("sites", 25)]
)
def test_each_swagger_ui_renders_its_operations(api, browser, feature, operations):
    from selenium.webdriver.common.by import By

    browser.get(f"{api}/{feature}/docs")
    tag = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".opblock-tag"))
    tag.click()  # the operations are collapsed under their tag
    wait(
        browser,
        lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) == operations,
    )
    assert not csp_violations(browser)


def test_try_it_out_on_a_get(api, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{api}/books/docs")
    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".opblock-tag")).click()
    block = wait(
        browser, lambda b: b.find_element(By.ID, "operations-books-get_popular")
    )
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait(
        browser, lambda b: block.find_element(By.CSS_SELECTOR, ".try-out__btn")
    ).click()
    wait(browser, lambda b: block.find_element(By.CSS_SELECTOR, ".execute")).click()
    # The live response table's status cells (the first is its "Code" heading).
    wait(
        browser,
        lambda b: "200"
        in [
            cell.text.strip()
            for cell in block.find_elements(
                By.CSS_SELECTOR, ".live-responses-table .response-col_status"
            )
        ],
    )
    body = block.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight").text
    assert '"Dracula"' in body


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
