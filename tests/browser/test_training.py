"""In the browser: submit a training job with a preset and watch the loss chart grow live."""

import pytest

from tests.browser.test_datasets import PASSWORD, _login

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(480)]


def test_submit_with_preset_and_watch_the_loss_chart(
    page, live_server, demo_model, scientist_data, worker_process
):
    user, version_id = scientist_data
    user.set_password(PASSWORD)
    user.save()
    _login(page, live_server, user.username)
    page.goto(f"{live_server.url}/jobs/new/?dataset_version={version_id}")
    page.select_option("select[name=preset]", "quick_lora")
    assert page.input_value("input[name=learning_rate]") == "0.0002"  # the preset filled it
    page.fill("input[name=max_seq_length]", "64")
    page.fill("input[name=max_steps]", "120")
    page.fill("input[name=save_steps]", "60")
    page.fill("input[name=learning_rate]", "0.001")
    page.select_option("select[name=precision]", "fp32")
    page.fill("textarea[name=advanced]", '{"logging_steps": 1}')
    page.click("#training-form button[type=submit]")
    page.wait_for_url("**/jobs/*/")
    url = page.url

    # The count the page showed first, then more points arriving with no reload in between.
    first = page.evaluate("(window.hearthJobCharts && window.hearthJobCharts.loss) || 0")
    page.wait_for_function(
        f"window.hearthJobCharts && window.hearthJobCharts.loss >= {first + 3}", timeout=240_000
    )
    assert page.url == url
    page.wait_for_function(
        "document.getElementById('job-status').dataset.status === 'succeeded'", timeout=180_000
    )
    assert page.locator("#job-model").is_visible()
    assert "step" in page.locator("#job-log").inner_text()
