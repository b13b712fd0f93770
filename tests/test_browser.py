"""A real browser (Debian's headless Chromium through Selenium) logs in to the web admin,
tries a sentence, adds a keyword and sees the dashboard with its charts. The screenshot is
saved as a test artefact (``test-artifacts/web-admin-dashboard.png``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.runtime import Runtime
from tests.helpers import accepted_ticket

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(5)  # each click loads a page; wait for its elements
    yield driver
    driver.quit()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_admin_logs_in_adds_a_word_and_sees_the_dashboard(
    runtime: Runtime, browser: object
) -> None:
    import asyncio

    from selenium.webdriver.common.by import By

    driver = browser
    await runtime.core.auth.set_password("admin", PASSWORD)
    # One real ticket, accepted, so every chart has something to draw.
    await accepted_ticket(runtime)
    base = f"{runtime.web_url}admin"

    def submit_and_wait(button: Any) -> None:
        """Submit a form and wait for the next page (reading before it comes finds the old
        page's elements, which then go stale)."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.wait import WebDriverWait

        def gone(_: object) -> bool:
            # Chromium reports an element of a page being replaced either as stale or, in
            # the middle of the swap, as "does not belong to the document": both mean gone.
            try:
                button.is_enabled()
            except WebDriverException:
                return True
            return False

        button.click()
        wait: Any = WebDriverWait(driver, 10)
        wait.until(gone)

    def drive() -> dict[str, str]:
        seen: dict[str, str] = {}
        driver.get(base + "/")  # type: ignore[attr-defined]
        find = driver.find_element  # type: ignore[attr-defined]
        find(By.ID, "staff_id").send_keys("admin")
        find(By.ID, "password").send_keys(PASSWORD)
        submit_and_wait(find(By.ID, "login"))
        seen["after_login"] = find(By.TAG_NAME, "h1").text
        driver.get(base + "/keywords?scope=xingfu")  # type: ignore[attr-defined]
        find(By.ID, "try_text").send_keys("老机器又撂挑子了")
        find(By.ID, "try_button").click()
        seen["before"] = find(By.ID, "try_result").text
        find(By.ID, "kw_word").send_keys("撂挑子")
        find(By.ID, "kw_preview").click()
        seen["whatif"] = find(By.ID, "whatif").text
        submit_and_wait(find(By.ID, "kw_confirm"))
        seen["saved"] = find(By.ID, "flash").text
        find(By.ID, "try_text").send_keys("老机器又撂挑子了")
        find(By.ID, "try_button").click()
        seen["after"] = find(By.ID, "try_result").text
        driver.get(base + "/?days=7")  # type: ignore[attr-defined]
        seen["charts"] = str(len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")))  # type: ignore[attr-defined]
        seen["received"] = find(By.ID, "received").text
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "web-admin-dashboard.png"))  # type: ignore[attr-defined]
        return seen

    # Selenium blocks; the bot (and its web server) keep running on the event loop meanwhile.
    seen = await asyncio.to_thread(drive)
    assert seen["after_login"] == "数据看板"
    assert "类别：非诉求" in seen["before"]
    assert "条将新成为工单" in seen["whatif"]
    assert seen["saved"].startswith("已保存：撂挑子")
    assert "类别：报修" in seen["after"]
    assert seen["charts"] == "3"
    assert seen["received"] == "1"
    assert (ARTIFACTS / "web-admin-dashboard.png").stat().st_size > 10_000
    history = await runtime.core.keywords.history()
    assert [(c.actor, c.word) for c in history] == [("staff:admin", "撂挑子")]
