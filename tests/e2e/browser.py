"""Headless Chromium for the dashboard's browser tests: Debian's own build, driven by Playwright.

Nothing is downloaded: without /usr/bin/chromium the tests skip (CI installs the package).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Page, Request, Response, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google's hosts, which this network refuses.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("QUANTDESK_SCREENSHOTS")  # a folder: the page test saves a picture of each page there

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@dataclass
class Problems:
    """What went wrong on a page: console errors, script errors, failed requests and HTTP errors."""

    seen: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"script error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.seen.append(f"console error: {message.text}")

    def _failed(self, request: Request) -> None:
        self.seen.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.seen.append(f"HTTP {response.status}: {response.url}")


@asynccontextmanager
async def browser_page(base_url: str, width: int = 1280, height: int = 900) -> AsyncIterator[tuple[Page, Problems]]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            context = await browser.new_context(base_url=base_url, viewport={"width": width, "height": height})
            page = await context.new_page()
            page.set_default_timeout(15_000)
            problems = Problems()
            problems.watch(page)
            yield page, problems
        finally:
            await browser.close()


async def sign_in(page: Page, key: str) -> None:
    await page.goto("/dashboard/signin")
    await page.fill("input[name=api_key]", key)
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_url("**/dashboard/accounts")
