"""One log shape for structlog and the standard library (temporalio's loggers included)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from workers import telemetry


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the process's logging back as it was: other tests share this interpreter."""
    root, temporalio_log = logging.getLogger(), logging.getLogger("temporalio")
    handlers, level, temporalio_level = root.handlers[:], root.level, temporalio_log.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    temporalio_log.setLevel(temporalio_level)
    structlog.reset_defaults()


def test_unset_format_is_console_on_a_terminal_and_json_elsewhere(restore_logging):
    assert telemetry.configure_logging(None, stream=Terminal()) == "console"
    assert telemetry.configure_logging(None, stream=io.StringIO()) == "json"
    assert telemetry.configure_logging("console", stream=io.StringIO()) == "console"


def test_temporalio_records_become_json_with_the_negotiation_and_movement(restore_logging):
    out = io.StringIO()
    telemetry.configure_logging("json", stream=out)
    context = {"workflow_id": "renewal-northwind-2027/closure", "run_id": "r-1", "attempt": 1}
    logging.getLogger("temporalio.workflow").info(
        "message rejected", extra={"temporal_workflow": context, "kind": "human_decision"}
    )
    structlog.get_logger("fitnest.worker").info("worker.stopping")

    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "message rejected" and first["logger"] == "temporalio.workflow"
    assert first["negotiation_id"] == "renewal-northwind-2027"
    assert first["movement"] == "closure"
    assert first["run_id"] == "r-1" and first["kind"] == "human_decision"
    assert "temporal_workflow" not in first  # flattened, not nested
    assert second["event"] == "worker.stopping" and second["level"] == "info"


def test_console_lines_carry_the_same_context(restore_logging):
    out = io.StringIO()
    telemetry.configure_logging("console", stream=out)
    logging.getLogger("temporalio.activity").warning(
        "retrying", extra={"temporal_activity": {"workflow_id": "sale-1", "attempt": 3}}
    )
    line = out.getvalue()
    assert "retrying" in line and "negotiation_id=sale-1" in line and "attempt=3" in line
    assert "movement=" not in line  # the negotiation itself, not a movement
    assert "\x1b[" not in line  # no colour codes when the stream is not a terminal


def test_levels_below_the_setting_are_dropped(restore_logging):
    out = io.StringIO()
    telemetry.configure_logging("json", level="WARNING", stream=out)
    logging.getLogger("temporalio.worker").info("polling")
    structlog.get_logger("fitnest.worker").info("worker.started")
    structlog.get_logger("fitnest.worker").warning("worker.slow")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["worker.slow"]


def test_debug_level_keeps_temporalio_at_info_because_its_debug_records_carry_payloads(
    restore_logging,
):
    out = io.StringIO()
    telemetry.configure_logging("json", level="DEBUG", stream=out)
    logging.getLogger("temporalio.worker._workflow").debug("Received workflow activation: ...")
    structlog.get_logger("fitnest.worker").debug("worker.detail")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["worker.detail"]
