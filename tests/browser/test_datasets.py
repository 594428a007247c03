"""In the browser: upload with a progress bar, preview, desensitize with a preset."""

import json

import pytest

from accounts import roles
from datasets_app.services import dataset_create
from tests.datasets.conftest import ALPACA_ROWS

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]
PASSWORD = "correct-horse-battery-9"


def _login(page, live_server, username):
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


def test_upload_preview_and_desensitize(page, live_server, make_user, worker_process, tmp_path):
    owner = make_user("nurse-lead", roles.DATA_SCIENTIST, password=PASSWORD)
    dataset = dataset_create(owner=owner, name="discharge notes")
    path = tmp_path / "notes.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ALPACA_ROWS * 400),
        encoding="utf-8",
    )
    _login(page, live_server, "nurse-lead")
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/")

    # Every value the progress bar shows is reported on the console (it outlives the redirect).
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text))
    page.evaluate("""() => { const el = document.getElementById('upload-percent');
      new MutationObserver(() => console.log('progress ' + el.textContent))
        .observe(el, {childList: true, characterData: true, subtree: true}); }""")
    page.set_input_files("#upload-input", str(path))
    page.wait_for_url("**/datasets/versions/*/")
    assert "progress 100%" in seen
    preview = page.locator("#preview").inner_text()
    assert "提取身份证号" in preview and "110105199003071239" in preview
    assert "alpaca" in page.locator("main").inner_text()

    page.select_option("#preset", "pipl")
    page.click("#desensitize-preview-button")
    rows = page.locator("#desensitize-preview-table tr")
    rows.first.wait_for()
    pairs = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    assert any("110105199003071239" in before for before, _ in pairs)  # the owner sees raw data
    assert all(
        "110105199003071239" not in after and "13812345678" not in after for _, after in pairs
    )

    page.click("#desensitize-form button[type=submit]")
    page.wait_for_url("**/jobs/*/")
    page.wait_for_selector("#job-result", timeout=90_000)
    assert "succeeded" in page.locator("#job-status").inner_text().lower()
    page.click("#job-result")
    page.wait_for_url("**/datasets/versions/*/")
    masked = page.locator("#preview").inner_text()
    assert "110105199003071239" not in masked and "13812345678" not in masked
    assert "desensitization" in page.locator("main").inner_text()


def test_client_side_size_limit(page, live_server, make_user, settings, tmp_path):
    owner = make_user("clerk", roles.DATA_SCIENTIST, password=PASSWORD)
    dataset = dataset_create(owner=owner, name="big export")
    settings.HEARTH_MAX_UPLOAD_BYTES = 10_000
    big = tmp_path / "big.jsonl"
    big.write_text('{"text": "x"}\n' * 5000)
    _login(page, live_server, "clerk")
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/")
    page.set_input_files("#upload-input", str(big))
    assert "upload limit" in page.locator("#upload-message").inner_text()
    assert dataset.versions.count() == 0


def test_cancel_stops_an_upload_in_flight(page, live_server, make_user, tmp_path):
    owner = make_user("archivist", roles.DATA_SCIENTIST, password=PASSWORD)
    dataset = dataset_create(owner=owner, name="slow link")
    path = tmp_path / "large.jsonl"
    path.write_text('{"text": "病历摘要 discharge summary"}\n' * 40_000, encoding="utf-8")
    _login(page, live_server, "archivist")
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/")
    # A slow uplink (about 200 kB/s) keeps the upload in flight long enough to cancel it.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 200_000},
    )
    page.set_input_files("#upload-input", str(path))
    page.locator("#upload-status").wait_for(state="visible")
    page.click("#upload-cancel")
    page.wait_for_function(
        "document.getElementById('upload-message').textContent.includes('cancelled')"
    )
    assert page.locator("#upload-status").is_hidden()
    assert dataset.versions.count() == 0
