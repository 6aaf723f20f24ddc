"""The one settings object: environment variables and an optional .env file, read in one place."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
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
    top_k: int = Field(default=3, ge=1, le=10, alias="ROLECALL_TOP_K")
    min_score: float = Field(default=0.30, ge=-1.0, le=1.0, alias="ROLECALL_MIN_SCORE")
    max_file_mb: float = Field(default=20.0, gt=0, alias="ROLECALL_MAX_FILE_MB")

    @field_validator("knowledge_path")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @property
    def index_dir(self) -> Path:
        """Where the index lives: ROLECALL_INDEX_DIR, else <data dir>/index."""
        return self.index_dir_override or self.data_dir / "index"

    @property
    def knowledge_dirs(self) -> list[Path]:
        """Knowledge folders: ROLECALL_KNOWLEDGE_DIR split on os.pathsep, else the bundled knowledge/."""
        parts = [p for p in self.knowledge_path.split(os.pathsep) if p.strip()]
        return [Path(p).expanduser() for p in parts] or [BUNDLED_KNOWLEDGE]

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


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
