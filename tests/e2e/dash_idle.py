"""Waiting for a Dash page to be idle before the next user action."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def settle(page: Page, timeout: float = 30_000) -> None:
    """Wait until no request is in flight and no component awaits a callback's output.

    Network idleness alone is not enough: Dash fires a chained callback only after the browser
    has processed the previous response (slow for a large figure on a busy machine), and until
    then the network looks idle. Dash's renderer shows a ``_dash-loading-callback`` element
    while any callback is pending and marks the components a callback will update with
    ``data-dash-is-loading``.
    """
    page.wait_for_load_state("networkidle")
    expect(page.locator("._dash-loading-callback")).to_have_count(0, timeout=timeout)
    expect(page.locator("[data-dash-is-loading='true']")).to_have_count(0, timeout=timeout)
    page.wait_for_load_state("networkidle")
