"""Operator commands of ``fitnest``: the encryption keyring and the codec server.

``fitnest keys init`` makes a keyring when there is none; ``fitnest keys rotate`` adds a new key
and makes it the one that seals (older keys keep opening what they sealed); ``fitnest keys list``
shows ids and which one is active, never key material. With ``--seal`` each works on the
workers' seal keyring instead (``workflows/seal.py``). ``fitnest codec-server`` serves decoding
for the Web UI and the ``temporal`` CLI. They run outside the event loop (``run_sync``).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workers.codec import add_active_key, load_keyring
from workers.settings import Settings

#: A new seal key seals negotiations started this long after its rotation: time enough to give
#: it to every worker first (a worker without it would seal them with the previous key).
SEAL_KEY_LEAD = timedelta(hours=24)


def _ring(args: argparse.Namespace, settings: Settings) -> Path:
    return settings.seal_key_file if args.seal else settings.key_file


def _keys_init(args: argparse.Namespace, settings: Settings) -> int:
    path = _ring(args, settings)
    if path.exists():
        load_keyring(path)  # an unusable file is an error, not something to overwrite
        print(f"{path} already holds a keyring; `fitnest keys rotate` adds a key")
        return 0
    key_id = add_active_key(path, create=True)
    print(f"created {path} (mode 0600) with active key {key_id}; keep it out of version control")
    return 0


def _keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    if args.seal:
        start = datetime.now(UTC) + SEAL_KEY_LEAD
        key_id = add_active_key(settings.seal_key_file, create=False, from_time=start)
        print(
            f"{key_id} seals the internal messages of negotiations started from "
            f"{start:%Y-%m-%d %H:%M} UTC. Give the seal keyring to every worker and restart them "
            "before then; keep the older keys while negotiations they sealed are open."
        )
        return 0
    key_id = add_active_key(settings.key_file, create=False)
    ring = load_keyring(settings.key_file)
    print(
        f"{key_id} now seals new payloads; {len(ring.keys) - 1} older key(s) still open old ones. "
        "Restart workers, clients and the codec server to use it (each reads the keyring at start)."
    )
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    path = _ring(args, settings)
    ring = load_keyring(path)
    document: dict[str, Any] = json.loads(path.read_text())
    created = {entry["id"]: entry.get("created", "-") for entry in document["keys"]}
    for key_id in ring.keys:
        mark = "active" if key_id == ring.active else "opens only"
        print(f"{key_id}  {created[key_id]}  {mark}")
    return 0


def add_commands(sub: Any) -> None:
    """Register ``keys`` and ``codec-server`` on the ``fitnest`` sub-command parser."""
    keys = sub.add_parser("keys", help="the payload encryption keyring (FITNEST_KEY_FILE)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    for name, handler, text in (
        ("init", _keys_init, "create the keyring if there is none"),
        ("rotate", _keys_rotate, "add a new key and make it the active one"),
        ("list", _keys_list, "show key ids and which is active (no key material)"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument(
            "--seal",
            action="store_true",
            help="the workers' seal keyring (FITNEST_SEAL_KEY_FILE) instead of the payload keyring",
        )
        p.set_defaults(run_sync=handler)

    p = sub.add_parser("codec-server", help="decode payloads for the Web UI and the temporal CLI")
    p.set_defaults(run_sync=_codec_server)


def _codec_server(args: argparse.Namespace, settings: Settings) -> int:
    from ui.codec_server import main  # FastAPI and uvicorn load only for this command

    main()
    return 0
