"""In the browser: the model version page's playground answers through the playground worker,
and the watermark it adds is found by the page's detect tool."""

from pathlib import Path

import pytest

from tests.browser.test_datasets import PASSWORD, _login
from tests.jobs.test_model_jobs import _stored_version

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]


def test_playground_and_watermark_detection_on_the_model_page(
    page, live_server, demo_model, scientist_data, playground_worker
):
    user, version_id = scientist_data
    user.set_password(PASSWORD)
    user.save()
    version = _stored_version(user, demo_model, version_id, Path(demo_model.location), "full")
    _login(page, live_server, user.username)
    page.goto(f"{live_server.url}/models/versions/{version.pk}/")
    assert "Not evaluated yet" in page.locator("#gate-verdict").inner_text()
    assert page.locator("#compress-form select[name=method] option[disabled]").count() >= 2

    page.fill("#playground-form textarea[name=prompt]", "第3号病人今天出院。")
    page.click("#playground-form button[type=submit]")
    page.wait_for_function(
        "document.querySelector('#playground-form output').textContent.includes('tokens/s')",
        timeout=120_000,
    )

    page.fill("#playground-form input[name=temperature]", "1")
    page.fill("#playground-form input[name=top_p]", "1")
    page.fill("#playground-form input[name=max_new_tokens]", "250")
    page.fill("#playground-form input[name=seed]", "1")
    page.check("#playground-form input[name=watermark]")
    page.click("#playground-form button[type=submit]")
    page.wait_for_function(
        "document.querySelector('#playground-form output').textContent.includes('watermarked')",
        timeout=120_000,
    )
    answer = page.locator("#playground-form output").inner_text().rsplit("\n\n", 1)[0]
    page.fill("#detect-form textarea[name=text]", answer)
    page.click("#detect-form button[type=submit]")
    page.wait_for_function(
        "document.querySelector('#detect-form output').textContent.includes('z =')",
        timeout=60_000,
    )
    assert page.locator("#detect-form output").inner_text().startswith("watermarked")
