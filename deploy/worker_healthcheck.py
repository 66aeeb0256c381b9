"""Healthcheck of the worker container: healthy while a worker on this host polls its task queue.

Run by docker compose inside the worker container, with the worker's own environment
(FITNEST_TEMPORAL_ADDRESS, FITNEST_NAMESPACE, FITNEST_TASK_QUEUE). Exit 0 when the frontend
lists a workflow-task poller whose identity ends in ``@<this hostname>`` (the SDK's default
identity is ``pid@hostname``, and a container's hostname is its id); exit 1 otherwise.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from workers.settings import Settings


async def pollers_of_this_host(settings: Settings) -> list[str]:
    """Identities of this host's workers polling the task queue for workflow tasks."""
    client = await Client.connect(settings.temporal_address, namespace=settings.namespace)
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    suffix = "@" + socket.gethostname()
    return [p.identity for p in described.pollers if p.identity.endswith(suffix)]


def main() -> int:
    """Print the verdict and return the exit code."""
    settings = Settings()
    try:
        mine = asyncio.run(asyncio.wait_for(pollers_of_this_host(settings), timeout=8))
    except Exception as err:
        print(f"unhealthy: cannot ask {settings.temporal_address}: {err}")
        return 1
    if not mine:
        print(f"unhealthy: no worker of this host polls {settings.task_queue!r}")
        return 1
    print(f"healthy: {', '.join(mine)} polling {settings.task_queue!r}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip interpreter finalization: temporalio's Rust threads can abort it (sdk-python#300).
    os._exit(code)
