"""Browser tests: the app on a live local server, driven by Debian's Chromium through Playwright.

Only SQLite here: a browser test checks what the user sees, the backends are covered by the other tests.
"""

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from app.clock import FrozenClock
from tests.conftest import need
from tests.helpers import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 360, "height": 740}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
E2E_DIR = Path(__file__).resolve().parent
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items: mark only the ones under tests/e2e.
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def database_url(database_urls) -> str:
    """Overrides the sqlite/postgresql parametrization: browser tests run once, on SQLite."""
    return database_urls["sqlite"]


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: Flask
    clock: FrozenClock


@pytest.fixture
def live_server(app, clock) -> Iterator[LiveServer]:
    """The test app (built by make_app, on the shared frozen clock) served on a free local port."""
    with serving(app) as server:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app, clock=clock)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium): browser tests skipped")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    p = sync_playwright().start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def browser(playwright, chromium_path) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def new_context(browser) -> Iterator:
    """Open extra contexts (JS off, mobile viewport...); every one is closed at teardown."""
    contexts: list[BrowserContext] = []

    def open_context(**options) -> BrowserContext:
        context = browser.new_context(**{"viewport": DESKTOP, **options})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context) -> Page:
    return context.new_page()


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot; into docs/screenshots/ only for `make screenshots`, so a test run never
    rewrites tracked files (otherwise into a throwaway folder, still proving the page renders)."""
    folder = SCREENSHOTS if os.environ.get("GATEHOUSE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "gh-shots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    return path
