"""What a person does on the design page, shared by the browser tests."""

from __future__ import annotations

from pathlib import Path

from dash_idle import settle
from playwright.sync_api import Page, expect


def upload_and_fit(page: Page, url: str, path: Path, name: str) -> None:
    """Open the design page, upload a bigWig, name the new biosample and press Fit and place."""
    page.goto(f"{url}/design")
    settle(page)
    page.set_input_files("#design-upload input[type=file]", str(path))
    expect(page.locator("#design-upload-label")).to_contain_text(path.name)
    page.fill("#design-new-name", name)
    page.click("#design-fit")
