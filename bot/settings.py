"""The one settings object: environment variables and an optional .env file, read in one place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.errors import RolecallError

BUNDLED_KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


def default_data_dir() -> Path:
    """Per-user data folder (index, feedback store), e.g. ~/.local/share/rolecall."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("rolecall", appauthor=False))


class SettingsError(RolecallError):
    """A setting has an invalid value; the message names the variable."""


class Settings(BaseSettings):
    """Every knob of Rolecall. Environment variable names are given by each field's alias."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default_factory=default_data_dir, alias="ROLECALL_DATA_DIR")
    index_dir_override: Path | None = Field(default=None, alias="ROLECALL_INDEX_DIR")
    knowledge_path: str = Field(default="", alias="ROLECALL_KNOWLEDGE_DIR")
    model: str = Field(default="", alias="ROLECALL_MODEL")
    embedder: Literal["onnx", "torch"] = Field(default="onnx", alias="ROLECALL_EMBEDDER")
    threads: int = Field(default=0, ge=0, le=256, alias="ROLECALL_THREADS")  # 0: every CPU we may use
    top_k: int = Field(default=3, ge=1, le=10, alias="ROLECALL_TOP_K")
    min_score: float = Field(default=0.42, ge=-1.0, le=1.0, alias="ROLECALL_MIN_SCORE")
    max_file_mb: float = Field(default=20.0, gt=0, alias="ROLECALL_MAX_FILE_MB")
    log_level: str = Field(default="INFO", alias="ROLECALL_LOG_LEVEL")
    admins_list: str = Field(default="", alias="ROLECALL_ADMINS")
    http_host: str = Field(default="0.0.0.0", alias="ROLECALL_HTTP_HOST")
    http_port: int = Field(default=3000, ge=0, le=65535, alias="ROLECALL_HTTP_PORT")

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_command: str = Field(default="/career", alias="ROLECALL_SLACK_COMMAND")
    slack_trust_workspace_admins: bool = Field(default=False, alias="ROLECALL_SLACK_TRUST_WORKSPACE_ADMINS")

    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_api_url: str = Field(default="", alias="DISCORD_API_URL")
    discord_gateway_url: str = Field(default="", alias="DISCORD_GATEWAY_URL")
    discord_message_content: bool = Field(default=False, alias="ROLECALL_DISCORD_MESSAGE_CONTENT")
    discord_channels_list: str = Field(default="", alias="ROLECALL_DISCORD_CHANNELS")

    @field_validator("knowledge_path")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @property
    def index_dir(self) -> Path:
        """Where the index lives: ROLECALL_INDEX_DIR, else <data dir>/index."""
        return self.index_dir_override or self.data_dir / "index"

    @property
    def model_cache_dir(self) -> Path:
        """Where the ONNX export of the model is cached: <data dir>/models."""
        return self.data_dir / "models"

    @property
    def knowledge_dirs(self) -> list[Path]:
        """Knowledge folders: ROLECALL_KNOWLEDGE_DIR split on os.pathsep, else the bundled knowledge/."""
        parts = [p for p in self.knowledge_path.split(os.pathsep) if p.strip()]
        return [Path(p).expanduser() for p in parts] or [BUNDLED_KNOWLEDGE]

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def admins(self) -> frozenset[str]:
        """Admin ids as 'platform:user id' (e.g. 'slack:U123', 'discord:4567'), from ROLECALL_ADMINS."""
        return frozenset(_split_list(self.admins_list))

    @property
    def discord_channels(self) -> frozenset[int]:
        """Channel ids where every message is answered (needs the Message Content intent)."""
        try:
            return frozenset(int(item) for item in _split_list(self.discord_channels_list))
        except ValueError as exc:
            raise SettingsError("invalid setting ROLECALL_DISCORD_CHANNELS: expected channel ids") from exc

    @property
    def database_path(self) -> Path:
        """The SQLite file for feedback votes and the audit log."""
        return self.data_dir / "rolecall.sqlite3"


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.replace(";", ",").split(",") if item.strip()]


def load_settings(**overrides: object) -> Settings:
    """Read settings; an invalid value becomes one SettingsError line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = str(first["loc"][0]) if first["loc"] else "?"
        alias = Settings.model_fields[field_name].alias if field_name in Settings.model_fields else None
        name = alias or field_name
        raise SettingsError(f"invalid setting {name}: {first['msg']}") from exc
