"""Reading a server's Prometheus /metrics text in tests, through prometheus_client's own parser.

One place for it (fetching and parsing): the rollout server, the reward service and the distributed GRPO
tests all read counters and gauges by name and labels. Importable from every test folder: tests/conftest.py puts `tests/` on sys.path.
"""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, token: str | None = None) -> str:
    """A server's /metrics text (with the bearer token where the server has one)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url + "/metrics", headers=headers, timeout=10).text


def metric_value(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`; `default` where there is none
    (a labelled counter appears only once counted), else an AssertionError naming the metric."""
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    if not values:
        assert default is not None, f"/metrics has no sample {name} with labels {labels}"
        return default
    return sum(values)
