import pytest
from django.utils import timezone

from jobs.services import worker_heartbeat

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
PASSWORD = "correct-horse-battery-9"


def test_login_and_see_dashboard_with_worker(page, live_server, make_user, tmp_path):
    make_user("ada", role="Data Scientist", password=PASSWORD)
    worker_heartbeat(
        hostname="hearth@gpu-01",
        host="gpu-01",
        pid=42,
        queues=["cpu", "gpu"],
        gpus=[{"index": 0, "name": "NVIDIA H200", "memory_mib": 143771}],
        concurrency=1,
    )

    page.goto(live_server.url + "/")
    assert "/login/" in page.url  # the dashboard needs a login
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").is_visible()

    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    assert page.locator("h1").inner_text() == "Dashboard"
    workers = page.locator("#workers")
    assert "hearth@gpu-01" in workers.inner_text()
    assert "NVIDIA H200" in workers.inner_text()
    assert "live" in workers.inner_text()
    nav = page.locator("nav.nav").inner_text()
    assert "Datasets" in nav and "Jobs" in nav and "Models" in nav
    assert "Audit" not in nav  # a Data Scientist is not an auditor
    assert "auth.login" in page.locator("main").inner_text()  # recent activity shows the login
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # The browser reported its time zone: times render in Asia/Shanghai (UTC+8), not UTC.
    page.reload()
    shown = page.locator("#workers time").inner_text()
    local = timezone.localtime(timezone.now(), timezone.get_fixed_timezone(8 * 60))
    assert shown.startswith(local.strftime("%Y-%m-%d %H"))

    page.click("text=Log out")
    page.wait_for_url("**/login/")


def test_mobile_layout_collapses_navigation(page, live_server, make_user):
    make_user("ben", role="Viewer", password=PASSWORD)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", "ben")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    assert not page.locator("nav.nav").is_visible()
    page.click("label.nav-toggle-label")
    assert page.locator("nav.nav").is_visible()
