"""The support figures in Prometheus: computed from the facts at each scrape, so that
what `/metrics` says is what `/api/metrics` says, and a restart loses nothing (the
facts are a table recovered from its changelog)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.feedback import metrics
from services.feedback.dashboard import Fresh

REUSE_SECONDS = 15.0

FIGURES = (  # (figure in metrics.summary, metric name, help)
    ("csat", "deskstream_csat_ratio", "Share of survey answers scoring 4 or 5"),
    ("response_rate", "deskstream_survey_response_ratio", "Surveys answered per survey sent"),
    ("surveys_sent", "deskstream_surveys_sent", "Surveys sent"),
    ("surveys_answered", "deskstream_surveys_answered", "Surveys answered"),
    ("first_response_seconds_median", "deskstream_first_response_median_seconds", "Median time from ticket to first reply"),
    ("first_response_seconds_p90", "deskstream_first_response_p90_seconds", "90th percentile time from ticket to first reply"),
    ("resolution_seconds_median", "deskstream_resolution_median_seconds", "Median time from ticket to resolution"),
    ("resolution_seconds_p90", "deskstream_resolution_p90_seconds", "90th percentile time from ticket to resolution"),
)
LABELLED_BY = ("channel", "skill", "priority")


class SupportFigures(Collector):
    """All tickets' figures, per channel, skill and priority (the per-agent and per-day
    figures stay in `/api/metrics`: as labels they would grow without bound)."""

    def __init__(self, facts: Callable[[], Iterable[dict[str, Any]]], reuse_seconds: float = REUSE_SECONDS) -> None:
        self.facts = facts
        self.rows = Fresh(self._summarise, reuse_seconds)  # a pass over every ticket: not on every scrape

    def _summarise(self) -> dict[str, list[dict[str, Any]]]:
        all_facts = list(self.facts())
        return {by: metrics.summary(all_facts, by=by) for by in LABELLED_BY}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = self.rows()
        for figure, name, help_text in FIGURES:
            family = GaugeMetricFamily(name, help_text, labels=["by", "value"])
            for by, grouped in rows.items():
                for row in grouped:
                    if row[figure] is not None:
                        family.add_metric([by, str(row[by])], float(row[figure]))
            yield family
