"""Fixtures for the browser tests: one JupyterLab server and one Chromium per test process."""

import os
import shutil
from pathlib import Path

import pytest

from lab_driver import CHROMIUM_ARGS, LabServer

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")


def _chromium() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM}. Install it "
                    "(Debian/Ubuntu: apt-get install chromium) or point COURSE_CHROMIUM at one.")
    return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    _chromium()
    # Kernels inherit this process's environment (OMP_NUM_THREADS included, see tests/conftest.py).
    with LabServer(ROOT / "notebooks", tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    # A common laptop window; JupyterLab keeps its file browser open beside the notebook.
    context = browser.new_context(viewport={"width": 1366, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    yield page
    context.close()
