"""Prometheus metrics for one Rolecall process, in a registry of its own (several can live side by side)."""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Outcome = Literal["answered", "refused", "error", "rate_limited"]
OUTCOMES: tuple[Outcome, ...] = ("answered", "refused", "error", "rate_limited")
ReindexResult = Literal["ok", "failed", "busy"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds from a question reaching the service to its answer being ready (embedding + search).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every counter, gauge and histogram Rolecall exposes on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.questions = Counter(
            "rolecall_questions",
            "Questions received, by platform and outcome (answered, refused, error, rate_limited).",
            ["platform", "outcome"],
            registry=self.registry,
        )
        self.answer_seconds = Histogram(
            "rolecall_answer_seconds",
            "Time to find the answer to one question, by platform.",
            ["platform"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reindex_runs = Counter(
            "rolecall_reindex_runs",
            "Reindex runs by result (ok, failed, busy).",
            ["result"],
            registry=self.registry,
        )
        self.reindex_seconds = Histogram(
            "rolecall_reindex_duration_seconds",
            "Duration of reindex runs that finished, successful or not.",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.reindex_last_success = Gauge(
            "rolecall_reindex_last_success_timestamp_seconds",
            "Unix time of the last successful reindex (0 before the first one).",
            registry=self.registry,
        )
        self.passages = Gauge(
            "rolecall_passages_indexed", "Passages in the live index.", registry=self.registry
        )
        self.votes = Counter(
            "rolecall_feedback_votes",
            "Feedback votes received, by platform and vote (up, down).",
            ["platform", "vote"],
            registry=self.registry,
        )

    def declare_platform(self, platform: str) -> None:
        """Show every outcome of a platform as 0 from the start, so rates and alerts have a series."""
        for outcome in OUTCOMES:
            self.questions.labels(platform=platform, outcome=outcome)

    def count_question(self, platform: str, outcome: Outcome, seconds: float | None = None) -> None:
        """One question and what became of it; `seconds` is the answer time when one was computed."""
        self.questions.labels(platform=platform, outcome=outcome).inc()
        if seconds is not None:
            self.answer_seconds.labels(platform=platform).observe(seconds)

    def count_reindex(self, result: ReindexResult, seconds: float | None, finished_at: float) -> None:
        self.reindex_runs.labels(result=result).inc()
        if seconds is not None and result != "busy":
            self.reindex_seconds.observe(seconds)
        if result == "ok":
            self.reindex_last_success.set(finished_at)

    def count_vote(self, platform: str, vote: str) -> None:
        self.votes.labels(platform=platform, vote=vote).inc()

    def render(self) -> bytes:
        """The Prometheus text format of everything in this registry."""
        return generate_latest(self.registry)
