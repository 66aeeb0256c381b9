"""Process settings, from environment variables (prefix ``FITNEST_``) or a ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
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
    log_format: Literal["console", "json"] | None = Field(
        default=None,
        description=(
            "'console' (readable, for people) or 'json' (one object a line, for log search). "
            "Unset: console when stderr is a terminal, json otherwise (containers, files)."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level logged (any case)."
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface the worker's Prometheus endpoint binds to (0.0.0.0 in containers).",
    )
    metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="Worker's Prometheus port (/metrics); 0: none."
    )
    graceful_shutdown_seconds: float = Field(
        default=20.0,
        ge=0,
        description=(
            "On SIGTERM, how long running activities may take to finish before they are "
            "cancelled; keep it below the orchestrator's kill timeout."
        ),
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

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
    smtp_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Bound of each SMTP step (connect, each command, DATA)."
    )
    smtp_username: str | None = Field(
        default=None, description="SMTP login, when the server wants one."
    )
    smtp_password: str | None = Field(
        default=None, description="SMTP password (from the environment only)."
    )
    max_cached_workflows: int = Field(
        default=1000,
        ge=0,
        description="Workflow runs the worker keeps in memory; older ones are evicted and "
        "replayed from history when they next have work (bounds the worker's memory).",
    )
    ledger_dir: Path = Field(
        default=Path(".data/notifications"),
        description="Sent-notification ledger as files (one machine), when ledger_url is unset.",
    )
    ledger_url: str | None = Field(
        default=None,
        description="The sent-notification ledger in PostgreSQL, as a libpq URL without the "
        "password (postgresql://user@host:5432/db); required when workers run on several hosts.",
    )
    ledger_password: str | None = Field(
        default=None, description="Password of ledger_url's user (from the environment only)."
    )
    ledger_max_sends: int = Field(
        default=10,
        ge=1,
        description="Sends one worker may have claimed in PostgreSQL at once (one connection each).",
    )
    ui_host: str = Field(default="127.0.0.1", description="Interface the approver UI listens on.")
    ui_port: int = Field(default=8000, description="Port of the approver UI and its JSON API.")
    ui_directory: Path | None = Field(
        default=None,
        description="YAML directory of approvers and API keys (secrets hashed); required by the UI.",
    )
    ui_secret: str | None = Field(
        default=None,
        description="Key signing the UI's session cookies; generated into ui_secret_file when unset.",
    )
    ui_secure_cookie: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (set behind TLS)."
    )
    ui_secret_file: Path = Field(
        default=Path(".data/ui-secret"), description="Where a generated session key is kept."
    )
    ui_audit_log: Path = Field(
        default=Path(".data/ui-audit.jsonl"),
        description="Append-only log of every decision attempt made through the UI.",
    )
    ui_public_url: str | None = Field(
        default=None,
        description="The URL people reach the UI at (https://fitnest.example.com behind a proxy); "
        "the OpenID redirect URL is derived from it. Default: http://ui_host:ui_port.",
    )
    ui_session_lifetime_seconds: float = Field(
        default=8 * 3600.0, gt=0, description="A session ends this long after sign-in."
    )
    ui_session_idle_seconds: float = Field(
        default=1800.0, gt=0, description="A session ends after this long without a request."
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer URL of the company's identity provider (discovery is "
        "read from <issuer>/.well-known/openid-configuration). Unset: local accounts only.",
    )
    oidc_client_id: str | None = Field(default=None, description="The UI's client id there.")
    oidc_client_secret: str | None = Field(
        default=None, description="The UI's client secret there (from the environment only)."
    )
    oidc_scopes: str = Field(
        default="openid email profile", description="Scopes asked for at sign-in."
    )
    oidc_groups_claim: str = Field(
        default="groups", description="The ID token claim listing the person's groups."
    )
    oidc_provider_name: str = Field(
        default="your company account", description="Shown on the sign-in button."
    )
    ui_throttle_user_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins one user name may have within the throttle window; further "
        "attempts get 429 until the oldest expires.",
    )
    ui_throttle_address_failures: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins and API keys one client address may have within the "
        "throttle window (several people may share an address behind NAT).",
    )
    ui_throttle_window_seconds: float = Field(
        default=900.0, gt=0, description="The throttle window: failures older than this expire."
    )
    ui_temporal_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds the UI waits for Temporal on one call (retries of an unreachable "
        "server included) before the page or API call answers 503.",
    )
    key_file: Path = Field(
        default=Path(".data/keys.json"),
        description="JSON keyring of the payload encryption keys (mode 0600, never committed).",
    )
    seal_key_file: Path = Field(
        default=Path(".data/seal-keys.json"),
        description="Keyring (same format as key_file) sealing the messages between a negotiation "
        "and its movements; only workers hold it (mode 0600, never committed).",
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

    @property
    def allowed_origins(self) -> list[str]:
        """``codec_allowed_origins`` as a list."""
        return [o.strip().rstrip("/") for o in self.codec_allowed_origins.split(",") if o.strip()]
