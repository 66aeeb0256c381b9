"""Process settings, from environment variables (prefix ``FITNEST_``) or a ``.env`` file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The task queue negotiations run on; the one place this name is written.
TASK_QUEUE = "negotiations"


class Settings(BaseSettings):
    """Where the Temporal cluster is and how this process talks to the outside world."""

    model_config = SettingsConfigDict(env_prefix="FITNEST_", env_file=".env", extra="ignore")

    temporal_address: str = Field(
        default="localhost:7233", description="Temporal frontend host:port."
    )
    namespace: str = Field(default="default", description="Temporal namespace.")
    task_queue: str = Field(
        default=TASK_QUEUE, description="Task queue of workflows and activities."
    )
    policy_file: Path | None = Field(
        default=None, description="YAML or JSON policy; defaults when unset."
    )
    outbox_dir: Path | None = Field(default=None, description="Write notifications here as files.")
    smtp_host: str | None = Field(default=None, description="SMTP server for notifications.")
    smtp_port: int = Field(default=25, description="SMTP port.")
    smtp_sender: str = Field(
        default="fitnest@localhost", description="From address of notifications."
    )
    smtp_starttls: bool = Field(default=False, description="Use STARTTLS with the SMTP server.")
    smtp_username: str | None = Field(
        default=None, description="SMTP login, when the server wants one."
    )
    smtp_password: str | None = Field(
        default=None, description="SMTP password (from the environment only)."
    )
    ledger_dir: Path = Field(
        default=Path(".data/notifications"), description="Sent-notification ledger."
    )
    key_file: Path = Field(
        default=Path(".data/keys.json"),
        description="JSON keyring of the payload encryption keys (mode 0600, never committed).",
    )
    codec_token: str | None = Field(
        default=None, description="Bearer token the codec server demands; required by it."
    )
    codec_allowed_origins: str = Field(
        default="http://localhost:8233",
        description="Comma list of browser origins (the Web UI) the codec server answers.",
    )
    codec_host: str = Field(default="127.0.0.1", description="Interface the codec server binds.")
    codec_port: int = Field(default=8081, description="Port of the codec server.")
    workflow_cache_size: int = Field(
        default=1000,
        ge=0,
        description="Workflows a worker keeps in memory; 0 replays every workflow task.",
    )

    @property
    def allowed_origins(self) -> list[str]:
        """``codec_allowed_origins`` as a list."""
        return [o.strip().rstrip("/") for o in self.codec_allowed_origins.split(",") if o.strip()]
