"""The processes that host workflows and activities: settings, client, worker, dev server."""
