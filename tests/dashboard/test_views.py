"""The dashboard's evaluation view, its point-to-episodes links on the curves and the training-log curves of
runs without rollouts (baselines), in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_runs import BASELINE_TERMS, WORST_SAMPLE
from dashboard_server import Server
from test_page import wait_for_chart

from dashboard.logs import LogsReader, curves_of, entries_of
from dashboard.state import Dashboard

HEALTHY, COLLAPSE = "healthy/grpo", "collapse/grpo"


@pytest.fixture(scope="module")
def baseline_server(baseline_runs: Path):
    with Server(baseline_runs) as server:
        yield server


def shown_samples(page) -> list[tuple[str, float]]:
    cards = page.locator(".sample")
    return [
        (cards.nth(k).get_attribute("data-id"), float(cards.nth(k).get_attribute("data-error")))
        for k in range(cards.count())
    ]


def test_an_evaluation_shows_its_samples_worst_errors_first_with_images_and_filters(
    finished_server: Server, page, tmp_path: Path
):
    page.goto(finished_server.url)
    page.click(f'button.eval-step[data-run="{HEALTHY}"][data-step="6"]')
    page.wait_for_selector(".sample")
    samples = shown_samples(page)
    assert len(samples) == 8 and page.inner_text("#sample-count") == "8 of 8 samples"
    errors = [error for _, error in samples]
    assert errors == sorted(errors, reverse=True)
    assert samples[0] == (WORST_SAMPLE, 0.98)  # a spoof scored P(spoof) 0.02 by the final answer
    assert page.locator(".sample.wrong").count() == 2
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.sample-image')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.locator("img.sample-image").count() == 8

    page.select_option('#eval-filters select[name="answer"]', "fast")  # the fast answer ranks them otherwise
    assert shown_samples(page)[0] == ("face-2", 0.6)
    page.select_option('#eval-filters select[name="answer"]', "final")
    page.select_option('#eval-filters select[name="domain"]', "studio")
    assert [sid for sid, _ in shown_samples(page)] == ["face-5", "face-4", "face-6", "face-7"]
    page.select_option('#eval-filters select[name="attack_type"]', "print")
    assert [sid for sid, _ in shown_samples(page)] == ["face-5"]
    page.select_option('#eval-filters select[name="domain"]', "")
    page.select_option('#eval-filters select[name="attack_type"]', "")
    page.check('#eval-filters input[name="wrong"]')
    assert [sid for sid, _ in shown_samples(page)] == [WORST_SAMPLE, "face-2"]
    page.screenshot(path=str(tmp_path / "evaluation.png"), full_page=True)


def test_clicking_a_point_of_a_curve_opens_that_steps_episodes(finished_server: Server, page):
    page.goto(finished_server.url)
    chart = "e:tools/rate"
    wait_for_chart(page, chart)
    image = page.locator(f'img[data-chart="{chart}"]')
    page.wait_for_function(
        f"() => Number(document.querySelector('img[data-chart=\"{chart}\"]').dataset.points) === 12"
    )
    # Step 5: the healthy run still calls tools, the collapsed one is at zero, far below on the chart.
    area = page.locator(f'map[data-chart="{chart}"] area[data-run="{HEALTHY}"][data-step="5"]')
    x, y = int(area.get_attribute("data-x")), int(area.get_attribute("data-y"))
    image.scroll_into_view_if_needed()
    box = image.bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)  # a real click on the picture, where the point is drawn
    page.wait_for_selector(".group .episode")
    assert page.inner_text("#episodes-title") == f"{HEALTHY}, step 5: GRPO groups"
    assert page.locator(f'button.step.selected[data-run="{HEALTHY}"][data-step="5"]').count() == 1
    assert page.locator(".episode").count() == 8

    image.scroll_into_view_if_needed()
    box = image.bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + 2)  # the chart's corner holds no point: nothing else opens
    assert page.inner_text("#episodes-title") == f"{HEALTHY}, step 5: GRPO groups"


def test_baseline_runs_show_a_curve_per_loss_term_from_their_training_logs(baseline_server: Server, page):
    page.goto(baseline_server.url)
    for term in set(BASELINE_TERMS) - {"loss_cls"}:
        svg = wait_for_chart(page, f"s:{term}")
        assert 'id="series-0"' in svg and 'id="series-1"' not in svg  # instructflip's curve alone
    svg = wait_for_chart(page, "s:loss_cls")  # a term both baselines log: both curves, overlaid
    assert 'id="series-0"' in svg and 'id="series-1"' in svg
    assert page.locator('img[data-chart="s:loss_caption"]').count() == 1
    assert page.locator('img[data-chart="s:epoch"]').count() == 0  # the step keys are not curves
    assert page.locator(".step").count() == 0 and page.locator("#evaluations").is_hidden()


def test_training_logs_give_every_numeric_key_a_curve_at_its_step(baseline_runs: Path, tmp_path: Path):
    dashboard = Dashboard(baseline_runs)
    dashboard.refresh()
    assert sorted(dashboard.runs) == ["caption", "instructflip"]  # a checkpoint is not a run of its own
    instructflip = dashboard.curves["instructflip"][1]
    assert instructflip["loss_cue"] == {step: 1.0 / (step + 3) for step in range(1, 6)}
    assert {"loss", "learning_rate", *BASELINE_TERMS} == set(instructflip)
    # A run still training: its newest checkpoint's state (step 4), not the older one.
    assert dashboard.curves["caption"][1]["loss_caption"] == {1: 0.5, 2: 1 / 3, 3: 0.25, 4: 0.2}
    groups = {chart["id"]: chart["group"] for chart in dashboard.charts()}
    assert groups["s:loss_content"] == "Loss terms" and groups["s:loss"] == "Optimisation"

    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 3, "loss/cls": 0.5, "ok": true}\nnot json\n{"loss/cls": 0.25}\n[1]\n')
    # The entry without a step is numbered by its place among the entries (2).
    assert curves_of(entries_of(log)) == {"loss/cls": {2: 0.25, 3: 0.5}}
    assert LogsReader(tmp_path).series() == {"loss/cls": {2: 0.25, 3: 0.5}}
