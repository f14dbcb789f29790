"""The dashboard page in a real headless Chromium, on run folders written by the project's own writers."""

from __future__ import annotations

from pathlib import Path

from dashboard_server import Server

HEALTHY, COLLAPSE = "healthy/grpo", "collapse/grpo"


def wait_for_chart(page, chart_id: str) -> str:
    """The chart's SVG once the page has drawn it (the image decoded, with a width)."""
    selector = f'img[data-chart="{chart_id}"]'
    page.wait_for_function(
        f"() => {{ const i = document.querySelector('{selector}'); return i && i.complete && i.naturalWidth > 0; }}"
    )
    return page.request.get(page.eval_on_selector(selector, "image => image.src")).text()


def test_page_draws_curves_and_a_step_opens_its_groups_with_tool_images(
    finished_server: Server, page, tmp_path
):
    page.goto(finished_server.url)
    reward_svg = wait_for_chart(page, "e:reward")
    # Both runs are overlaid on the reward curve, each with its 6 steps.
    assert 'id="series-0"' in reward_svg and 'id="series-1"' in reward_svg
    for chart in ("e:tools/rate/FFTTool", "s:kl", "s:entropy", "time", "s:target/HQ-WMCA/final/hter"):
        assert page.locator(f'img[data-chart="{chart}"]').count() == 1, chart

    page.click(f'button.step[data-run="{HEALTHY}"][data-step="2"]')
    page.wait_for_selector(".group .episode")
    assert page.locator(".group").count() == 2
    assert page.locator(".group").first.locator(".episode").count() == 4
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.tool-image, img.input-image')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.locator("img.tool-image").count() >= 4
    assert page.locator("img.input-image").count() == 8
    breakdown = page.locator(".episode table.rewards").first.inner_text()
    assert "component/tool_diversity" in breakdown and "reasoning" in breakdown
    assert page.inner_text("#episode-count") == "8 of 8 episodes"

    page.select_option('select[name="tool"]', "LBPTool")
    shown = page.locator(".episode")
    assert 0 < shown.count() < 8
    assert page.inner_text("#episode-count") == f"{shown.count()} of 8 episodes"
    for k in range(shown.count()):
        assert "LBPTool" in shown.nth(k).inner_text()
    page.select_option('select[name="tool"]', "")
    page.fill('input[name="search"]', "episode 3<")
    assert page.locator(".episode").count() == 1

    screenshot = tmp_path / "dashboard.png"
    page.select_option('select[name="tool"]', "")
    page.fill('input[name="search"]', "")
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


def test_an_alert_marks_the_run_whose_tool_calls_stopped_and_none_the_healthy_one(
    finished_server: Server, page
):
    page.goto(finished_server.url)
    page.wait_for_selector(".alert")
    alerts = page.locator(".alert")
    assert alerts.count() == 1
    assert alerts.first.get_attribute("data-run") == COLLAPSE
    assert alerts.first.get_attribute("data-kind") == "tool_collapse"
    assert alerts.first.get_attribute("data-began") == "3"
    assert page.locator(f'.alert[data-run="{HEALTHY}"]').count() == 0


def test_a_step_written_while_the_page_is_open_appears_without_a_reload(tmp_path: Path, page):
    from dashboard_runs import RunWriter

    writer = RunWriter(tmp_path / "runs" / "live" / "grpo")
    writer.write_step(1)
    writer.write_step(2)
    with Server(tmp_path / "runs") as server:
        page.goto(server.url)
        before = wait_for_chart(page, "e:reward")
        before_src = page.eval_on_selector('img[data-chart="e:reward"]', "image => image.src")
        assert page.locator("button.step").count() == 2
        page.evaluate("window.stillTheSamePage = true")
        writer.write_step(3)
        page.wait_for_selector('button.step[data-run="live/grpo"][data-step="3"]')
        page.wait_for_function(
            f"() => document.querySelector('img[data-chart=\"e:reward\"]').src !== {before_src!r}"
        )
        after = wait_for_chart(page, "e:reward")
        assert page.evaluate("window.stillTheSamePage") is True  # the same page, never reloaded
        assert after != before  # the curve was drawn again with the new step
