"""Activity options the workflows use, each chosen for what the activity talks to.

Splat them into the call::

    await workflow.execute_activity(legal_review, inp, **REVIEW)

They are ``TypedDict``s, so mypy checks every key against ``execute_activity``'s parameters. Treat
them as constants: a change applies to every activity scheduled afterwards, in running
negotiations too.

Shared choices:

* ``maximum_attempts=0`` (unlimited) bounded by ``schedule_to_close_timeout``: the bound is time,
  which is what the business cares about, not an attempt count that means different things at
  different backoffs.
* ``non_retryable_error_types`` repeats the permanent types each activity can raise. They are raised
  non-retryable already; listing them puts the intent in the history and protects against a
  future code path that forgets the flag.
* Arguments that fail to decode on the worker fail with a *retryable* "Failed decoding arguments"
  (the SDK's choice); the schedule-to-close bound is what stops those, too.

This module imports nothing but the standard library and ``temporalio.common``: it is safe to
import from workflow code without passing anything through the sandbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final, TypedDict

from temporalio.common import RetryPolicy


class ActivityOptions(TypedDict, total=False):
    """The keyword arguments of ``workflow.execute_activity`` these presets fill."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy


def _preset(
    *,
    attempt: timedelta,
    overall: timedelta,
    first_retry: timedelta,
    longest_retry: timedelta,
    permanent: list[str],
    heartbeat: timedelta | None = None,
) -> ActivityOptions:
    """Options with the shared choices above: doubling backoff, attempts bounded by time only."""
    options = ActivityOptions(
        start_to_close_timeout=attempt,
        schedule_to_close_timeout=overall,
        retry_policy=RetryPolicy(
            initial_interval=first_retry,
            backoff_coefficient=2.0,
            maximum_interval=longest_retry,
            maximum_attempts=0,
            non_retryable_error_types=permanent,
        ),
    )
    if heartbeat is not None:
        options["heartbeat_timeout"] = heartbeat
    return options


#: Legal review and finance approval: rule evaluations over one terms version.
#: - 30 s per attempt: the work takes milliseconds; anything longer is a stuck or lost worker, and
#:   30 s still absorbs a GC pause or a worker restarting under load.
#: - retries from 1 s doubling to 1 min: worker crashes heal fast, a bug needs a deploy.
#: - 1 h in all: long enough to roll out a fix; after that the workflow must escalate to a person
#:   rather than keep an approver waiting on a review that will not come.
REVIEW: Final[ActivityOptions] = _preset(
    attempt=timedelta(seconds=30),
    overall=timedelta(hours=1),
    first_retry=timedelta(seconds=1),
    longest_retry=timedelta(minutes=1),
    permanent=["InvalidReviewInput"],
)

#: Loading the policy: one small local file read, at the start of a negotiation.
#: - 10 s per attempt: a local read; longer means a hung network mount.
#: - retries from 1 s to 30 s, 10 min in all: an invalid file fails at once (InvalidPolicy), so
#:   retries only cover lost workers and flaky mounts; a negotiation should not sit unstarted for
#:   longer without someone being told.
POLICY: Final[ActivityOptions] = _preset(
    attempt=timedelta(seconds=10),
    overall=timedelta(minutes=10),
    first_retry=timedelta(seconds=1),
    longest_retry=timedelta(seconds=30),
    permanent=["InvalidPolicy"],
)

#: Sending a notification (SMTP and/or an outbox file).
#: - 60 s per attempt: connect, STARTTLS, login and DATA each get a 10 s socket timeout; 60 s
#:   covers a slow server without letting a hung session block the retry for long.
#: - retries from 5 s doubling to 10 min: mail servers go down for maintenance and greylist with
#:   4xx; don't hammer them, but deliver within minutes of their return.
#: - 24 h in all: a night-long outage still delivers by morning; after a day the message is stale
#:   and the workflow should record the failure and tell someone another way.
#: - heartbeat within 10 s: the activity heartbeats while it sends, so a worker that dies mid-send
#:   is noticed after 10 s rather than after the whole 60 s attempt.
NOTIFY: Final[ActivityOptions] = _preset(
    attempt=timedelta(seconds=60),
    overall=timedelta(hours=24),
    first_retry=timedelta(seconds=5),
    longest_retry=timedelta(minutes=10),
    permanent=["InvalidNotification", "NotificationRejected"],
    heartbeat=timedelta(seconds=10),
)
