"""``fitnest ui``: serve the approver UI and API; ``fitnest ui hash-secret``: hash a password or key."""

from __future__ import annotations

import getpass
import secrets
import sys

import uvicorn

from ui.app import create_app
from ui.directory import DirectoryError, hash_secret, load_directory
from workers.client import data_converter
from workers.codec import KeyringError
from workers.settings import Settings


def serve(settings: Settings) -> int:
    """Run the UI until Ctrl-C; 2 when the directory or the keyring is missing or invalid.

    Temporal need not answer yet: pages that need it answer 503 until it does.
    """
    if settings.ui_directory is None:
        print(
            "error: set FITNEST_UI_DIRECTORY to the approver directory (YAML); "
            "ui/demo/approvers.yaml is the demo one",
            file=sys.stderr,
        )
        return 2
    try:
        directory = load_directory(settings.ui_directory)
    except DirectoryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        data_converter(settings)  # say so now, not as a traceback from the app's startup
    except KeyringError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings, directory)
    except ValueError as err:  # an identity provider half configured
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"Fitnest UI on http://{settings.ui_host}:{settings.ui_port}/", flush=True)
    uvicorn.run(app, host=settings.ui_host, port=settings.ui_port, log_level="warning")
    return 0


def hash_command(generate_key: str | None = None) -> int:
    """Print the Argon2id hash of a secret read from the terminal (or stdin), or a new API key and
    its hash."""
    if generate_key:
        secret = secrets.token_urlsafe(24)
        print(f"API key (give it to the backend, once): {generate_key}.{secret}")
        print(f"directory entry: {{key_id: {generate_key}, secret_hash: '{hash_secret(secret)}'}}")
        return 0
    secret = (
        getpass.getpass("secret: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    )
    if not secret:
        print("error: an empty secret cannot be hashed", file=sys.stderr)
        return 2
    print(hash_secret(secret))
    return 0
