"""An OpenTelemetry SDK for the tracing tests: one TracerProvider per process (the API allows the global
provider to be set once), its spans kept in memory. The worker makes spans only with `tracing` on (its
default is off), so other tests in the same process make none."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@functools.cache
def _exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


class Spans:
    """The spans finished during one test, by name and by relation."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    @property
    def all(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all if s.name == name]

    def children_of(self, parent: ReadableSpan) -> list[ReadableSpan]:
        span_id = parent.context.span_id
        return [s for s in self.all if s.parent is not None and s.parent.span_id == span_id]

    def tracer(self) -> Any:
        return trace.get_tracer("tests.publisher")


@pytest.fixture
def spans() -> Iterator[Spans]:
    exporter = _exporter()
    exporter.clear()
    yield Spans(exporter)
    exporter.clear()
