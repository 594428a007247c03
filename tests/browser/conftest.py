"""Headless Debian Chromium driven by Playwright (browsers cannot be downloaded here)."""

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("HEARTH_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-GB", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
