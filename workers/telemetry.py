"""Logs and metrics of every Fitnest process: one log format, one Prometheus endpoint per worker.

Logs: structlog renders every line, including the standard-library records of temporalio
(``workflow.logger``, ``activity.logger``, the SDK core forwarded to ``temporalio.core``), so a
log search sees one shape. ``FITNEST_LOG_FORMAT=json`` writes one JSON object a line;
``console`` writes readable lines; unset, a terminal gets console and anything else (a file, a
container's log driver) gets JSON. Every line inside Temporal code carries the workflow id, run
id and type (plus the activity type, id and attempt in an activity), and the negotiation id and
movement read from the workflow id (``<negotiation id>/<movement>`` for the movements).

``workflow.logger`` stays the way workflow code logs: it is silent while a worker replays
history, so a replayed workflow does not repeat its lines.

Metrics: :func:`runtime` builds a temporalio Runtime whose Prometheus endpoint serves the SDK's
metrics and the ones workflow code emits through ``workflow.metric_meter()``
(``workflows/metrics.py``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import IO, Any, Literal

import structlog
from temporalio import activity, workflow
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from workers.settings import Settings
from workflows.metrics import BUCKETS

LogFormat = Literal["console", "json"]

#: Context temporalio puts on its records' ``extra``, flattened into the event.
_TEMPORAL_EXTRAS = ("temporal_workflow", "temporal_activity")
#: A forwarded core record carries its raw form here; the message already says it all.
_CORE_RECORD = "temporal_log"


class MetricsUnavailable(RuntimeError):
    """The Prometheus endpoint could not be opened; the message says where and why."""


def _temporal_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Flatten temporalio's context, or add it for structlog lines logged inside an activity."""
    event.pop(_CORE_RECORD, None)
    for extra in _TEMPORAL_EXTRAS:
        details = event.pop(extra, None)
        if isinstance(details, dict):
            for key, value in details.items():
                event.setdefault(key, value)
    if activity.in_activity():
        for key, value in activity.info()._logger_details().items():
            event.setdefault(key, value)
    return event


def _negotiation_context(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Negotiation id and movement, read from the workflow id (``<id>`` or ``<id>/<movement>``)."""
    workflow_id = event.get("workflow_id")
    if isinstance(workflow_id, str) and workflow_id:
        negotiation_id, _, movement = workflow_id.partition("/")
        event.setdefault("negotiation_id", negotiation_id)
        if movement:
            event.setdefault("movement", movement)
    return event


def resolve_format(log_format: LogFormat | None, stream: IO[str]) -> LogFormat:
    """The format to use: the one asked for, else console on a terminal and JSON elsewhere."""
    if log_format is not None:
        return log_format
    return "console" if stream.isatty() else "json"


def configure_logging(
    log_format: LogFormat | None = None, level: str = "INFO", stream: IO[str] | None = None
) -> LogFormat:
    """Route structlog and the standard library through one renderer on ``stream`` (stderr).

    Returns the format chosen. Safe to call again (tests, a process that re-reads settings).
    """
    stream = stream or sys.stderr
    chosen = resolve_format(log_format, stream)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _temporal_context,
        _negotiation_context,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if chosen == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if chosen == "json" else _keep,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # temporalio's DEBUG records print whole activations and completions, payloads (deal terms)
    # included: its loggers stay at INFO or above whatever the level asked for.
    logging.getLogger("temporalio").setLevel(max(root.level, logging.INFO))
    # The context goes into fields, not into the message text (the SDK's default appends it).
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    return chosen


def _keep(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The console renderer formats exceptions itself."""
    return event


def configure_from(settings: Settings) -> LogFormat:
    """:func:`configure_logging` with the process settings (``FITNEST_LOG_FORMAT``, ``_LEVEL``)."""
    return configure_logging(settings.log_format, settings.log_level)


def metrics_url(settings: Settings) -> str | None:
    """Where Prometheus scrapes this worker, or None when metrics are off (port 0)."""
    if not settings.metrics_port:
        return None
    host = "localhost" if settings.metrics_host in ("0.0.0.0", "::", "") else settings.metrics_host
    return f"http://{host}:{settings.metrics_port}/metrics"


def runtime(settings: Settings) -> Runtime:
    """A temporalio Runtime serving Prometheus metrics and forwarding core logs to Python.

    Raises :class:`MetricsUnavailable` when the port cannot be bound.
    """
    metrics = (
        PrometheusConfig(
            bind_address=f"{settings.metrics_host}:{settings.metrics_port}",
            durations_as_seconds=True,
            histogram_bucket_overrides={name: list(b) for name, b in BUCKETS.items()},
        )
        if settings.metrics_port
        else None
    )
    telemetry = TelemetryConfig(
        metrics=metrics,
        logging=LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="WARN"),
            forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
        ),
    )
    try:
        return Runtime(telemetry=telemetry)
    except Exception as err:  # the bridge reports a failed bind as a plain exception
        raise MetricsUnavailable(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({err}); "
            "choose another FITNEST_METRICS_PORT, or 0 to turn metrics off"
        ) from err
