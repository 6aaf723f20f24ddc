"""The one settings object: environment variables and an optional .env file, read in one place."""

from __future__ import annotations

import difflib
import io
import logging
import os
import re
import sys
import urllib.parse
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.records import check_database_url
from index.embedding import QueryPrecision
from index.errors import RolecallError

BUNDLED_KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


def default_data_dir() -> Path:
    """Per-user data folder (index, feedback store), e.g. ~/.local/share/rolecall."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("rolecall", appauthor=False))


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# ROLECALL_ADMINS entries: Slack member ids as Slack writes them (U… or, on Enterprise Grid, W…, in
# capitals); Discord user ids (snowflakes) are digits.
_ADMIN_ENTRY = re.compile(r"slack:[UW][A-Z0-9]+|discord:[0-9]+")
_ADMIN_FORM = "write slack:U0123ABCD or discord:123456789012345678"


# python-dotenv logs "could not parse statement starting at line N" once per read, naming no file;
# load_settings warns once, with the file and line, instead
logging.getLogger("dotenv.main").setLevel(logging.ERROR)


class SettingsError(RolecallError):
    """A setting has an invalid value; the message names the variable."""


class Settings(BaseSettings):
    """Every knob of Rolecall. Environment variable names are given by each field's alias."""

    # allow_inf_nan=False: `nan` would slip past every bound (each comparison with it is false).
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, allow_inf_nan=False
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        alias="ROLECALL_DATA_DIR",
        description="where the index and the feedback/audit store live",
    )
    index_dir_override: Path | None = Field(
        default=None, alias="ROLECALL_INDEX_DIR", description="the index folder (`--index` overrides)"
    )
    knowledge_path: str = Field(
        default="",
        alias="ROLECALL_KNOWLEDGE_DIR",
        description="knowledge folders, separated by `:` (`os.pathsep`); `--knowledge` overrides",
    )
    model: str = Field(
        default="",
        alias="ROLECALL_MODEL",
        description="a local model folder or a model id already in the local Hugging Face cache",
    )
    embedder: Literal["onnx", "torch"] = Field(
        default="onnx",
        alias="ROLECALL_EMBEDDER",
        description="`onnx` (ONNX Runtime, exported once from the packaged model; falls back to torch) or `torch`",
    )
    query_precision: QueryPrecision = Field(
        default="fp32",
        alias="ROLECALL_QUERY_PRECISION",
        description="`fp32`: questions go through the exact model; `int8`: through a block-wise int8 copy of"
        " the ONNX model, made once beside it (0.83-0.86x the query embedding time on a CPU with VNNI or AMX,"
        " 1.7x on one with AVX2 alone; some top-3 lists change, see bench/README.md); `auto`: int8 where the"
        " CPU has VNNI or AMX, else fp32. Documents are always embedded in fp32",
    )
    threads: int = Field(
        default=0,
        ge=0,
        le=256,
        alias="ROLECALL_THREADS",
        description="inference threads; 0: every CPU we may use",
    )
    top_k: int = Field(
        default=3, ge=1, le=10, alias="ROLECALL_TOP_K", description="passages per answer (1–10)"
    )
    min_score: float = Field(
        default=0.42,
        ge=-1.0,
        le=1.0,
        alias="ROLECALL_MIN_SCORE",
        description="relevance floor (cosine); below it the bot says it does not know, unless the passage holds"
        " an exact term or enough of the question's words (RolecallService._shown)",
    )
    support_score: float = Field(
        default=0.30,
        ge=-1.0,
        le=1.0,
        alias="ROLECALL_SUPPORT_SCORE",
        description="once a passage clears the floor, others of the top k down to this score are shown after it;"
        " at or above ROLECALL_MIN_SCORE: none are",
    )
    nearest_score: float = Field(
        default=0.34,
        ge=-1.0,
        le=1.0,
        alias="ROLECALL_NEAREST_SCORE",
        description="a question the bot does not answer names its nearest section when the first passage scores"
        " this much; at or above ROLECALL_MIN_SCORE: never",
    )
    max_file_mb: float = Field(
        default=20.0,
        gt=0,
        alias="ROLECALL_MAX_FILE_MB",
        description="larger documents are skipped with a reason",
    )
    log_level: LogLevel = Field(
        default="INFO", alias="ROLECALL_LOG_LEVEL", description="DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        alias="ROLECALL_LOG_FORMAT",
        description="`text` (one readable line per event) or `json` (one JSON object per line)",
    )
    admins_list: str = Field(
        default="",
        alias="ROLECALL_ADMINS",
        description="who may reindex from chat: `slack:<member id>` and `discord:<user id>` entries, comma-separated"
        " (e.g. `slack:U0123ABCD,discord:123456789012345678`); any other entry is an error",
    )
    http_host: str = Field(
        default="0.0.0.0",
        alias="ROLECALL_HTTP_HOST",
        description="address of the HTTP server (`/healthz`, `/metrics`, Slack HTTP events)",
    )
    http_port: int = Field(
        default=3000, ge=0, le=65535, alias="ROLECALL_HTTP_PORT", description="port of that HTTP server"
    )
    rate_limit: int = Field(
        default=10,
        ge=0,
        alias="ROLECALL_RATE_LIMIT",
        description="questions one user may ask per minute; 0 turns the limit off",
    )
    max_question_chars: int = Field(
        default=500,
        ge=20,
        le=10_000,
        alias="ROLECALL_MAX_QUESTION_CHARS",
        description="longer questions are cut to this many characters, and the answer says so",
    )
    watch: bool = Field(
        default=False,
        alias="ROLECALL_WATCH",
        description="`rolecall serve` reindexes in the background when a knowledge folder changes (debounced)",
    )
    vector_store: Literal["faiss", "qdrant"] = Field(
        default="faiss",
        alias="ROLECALL_VECTOR_STORE",
        description="`faiss` (in-process, files in the index folder) or `qdrant` (one index shared by replicas)",
    )
    qdrant_path_override: Path | None = Field(
        default=None,
        alias="ROLECALL_QDRANT_PATH",
        description="Qdrant local mode's folder (one process at a time), used when ROLECALL_QDRANT_URL is unset",
    )
    qdrant_url: str = Field(
        default="",
        alias="ROLECALL_QDRANT_URL",
        description="a Qdrant server or cluster, e.g. `http://qdrant:6333`; overrides ROLECALL_QDRANT_PATH",
    )
    qdrant_api_key: SecretStr | None = Field(
        default=None, alias="ROLECALL_QDRANT_API_KEY", description="the Qdrant server's API key"
    )
    database_url: SecretStr | None = Field(
        default=None,
        alias="ROLECALL_DATABASE_URL",
        description="feedback, audit and Slack event de-duplication: `sqlite:///file` (one host) or"
        " `postgresql://user:password@host/db` (shared by replicas)",
    )
    reindex_lease_seconds: int = Field(
        default=120,
        ge=5,
        alias="ROLECALL_REINDEX_LEASE_SECONDS",
        description="Qdrant: a reindex holds a lease in Qdrant (renewed while it runs); a crashed one blocks"
        " the next reindex this long at most",
    )

    slack_bot_token: SecretStr | None = Field(
        default=None, alias="SLACK_BOT_TOKEN", description="Slack Bot User OAuth Token (`xoxb-…`)"
    )
    slack_app_token: SecretStr | None = Field(
        default=None, alias="SLACK_APP_TOKEN", description="Slack app-level token (`xapp-…`): Socket Mode"
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        alias="SLACK_SIGNING_SECRET",
        description="Slack signing secret: HTTP events at `/slack/events` (when no app token is set)",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", alias="SLACK_API_URL", description="the Slack Web API base URL"
    )
    slack_command: str = Field(
        default="/career",
        alias="ROLECALL_SLACK_COMMAND",
        description="the slash command, as in the app manifest",
    )
    slack_trust_workspace_admins: bool = Field(
        default=False,
        alias="ROLECALL_SLACK_TRUST_WORKSPACE_ADMINS",
        description="Slack workspace admins and owners may reindex too",
    )

    discord_token: SecretStr | None = Field(
        default=None, alias="DISCORD_TOKEN", description="the Discord bot token"
    )
    discord_api_url: str = Field(
        default="",
        alias="DISCORD_API_URL",
        description="Discord REST base URL, e.g. a rate-limit-sharing proxy; unset: discord.py's own"
        " (`https://discord.com/api/v10` in discord.py 2.7)",
    )
    discord_gateway_url: str = Field(
        default="",
        alias="DISCORD_GATEWAY_URL",
        description="Discord gateway websocket URL; unset: discord.py's own (`wss://gateway.discord.gg/` in"
        " discord.py 2.7)",
    )
    discord_admin_servers_list: str = Field(
        default="",
        alias="ROLECALL_DISCORD_ADMIN_SERVERS",
        description="Discord server ids (digits) where members with Manage Server may reindex too, comma-separated",
    )
    discord_message_content: bool = Field(
        default=False,
        alias="ROLECALL_DISCORD_MESSAGE_CONTENT",
        description="use the privileged Message Content intent (needed for ROLECALL_DISCORD_CHANNELS)",
    )
    discord_channels_list: str = Field(
        default="",
        alias="ROLECALL_DISCORD_CHANNELS",
        description="Discord channel ids (digits) where every message is answered, comma-separated",
    )
    discord_shard_ids_list: str = Field(
        default="",
        alias="ROLECALL_DISCORD_SHARD_IDS",
        description="the Discord shards this process runs, comma-separated (e.g. `0,1`); empty: all of them",
    )
    discord_shard_count: int = Field(
        default=0,
        ge=0,
        le=10_000,
        alias="ROLECALL_DISCORD_SHARD_COUNT",
        description="total shards across every process; 0: one process, Discord's recommended count",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("admins_list")
    @classmethod
    def _admins(cls, value: str) -> str:
        bad = [item for item in _split_list(value) if not _ADMIN_ENTRY.fullmatch(item)]
        if bad:
            raise ValueError(
                f"{_quoted(bad)} {'is' if len(bad) == 1 else 'are'} not slack:<member id> or discord:<user id>:"
                f" {_ADMIN_FORM} (Slack ids in capitals, Discord ids in digits), separated by commas"
            )
        return value

    @field_validator("discord_admin_servers_list", "discord_channels_list")
    @classmethod
    def _discord_ids(cls, value: str) -> str:
        bad = [item for item in _split_list(value) if not item.isascii() or not item.isdigit()]
        if bad:
            raise ValueError(
                f"{_quoted(bad)} {'is' if len(bad) == 1 else 'are'} not {'a Discord id' if len(bad) == 1 else 'Discord ids'}:"
                " ids are digits only (Developer Mode, then right-click > Copy ID), separated by commas"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(check_database_url(value.get_secret_value().strip()))

    @model_validator(mode="after")
    def _shards(self) -> Settings:
        ids = self.discord_shard_ids  # raises on a malformed list
        if ids and not self.discord_shard_count:
            raise ValueError("ROLECALL_DISCORD_SHARD_IDS needs ROLECALL_DISCORD_SHARD_COUNT (the total)")
        if any(i >= self.discord_shard_count for i in ids):
            raise ValueError(
                f"ROLECALL_DISCORD_SHARD_IDS must be below ROLECALL_DISCORD_SHARD_COUNT ({self.discord_shard_count})"
            )
        return self

    @field_validator("slack_api_url", "discord_api_url", "discord_gateway_url", "qdrant_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        try:
            parts = urllib.parse.urlsplit(value)
            parts.port  # noqa: B018 - parsing it is the check
        except ValueError:
            raise ValueError("expected a URL such as https://host:port/") from None
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise ValueError("expected a URL such as https://host:port/")
        return value

    @field_validator("knowledge_path")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("index_dir_override", "qdrant_path_override", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        """`ROLECALL_INDEX_DIR=` (as an empty `VAR=` in compose) means unset, not the working directory."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _default_when_empty(cls, value: object) -> object:
        return default_data_dir() if isinstance(value, str) and not value.strip() else value

    @property
    def chat_platform_configured(self) -> bool:
        """Is a Slack or Discord bot token set, so `rolecall serve` has something to run?"""
        return _is_set(self.slack_bot_token) or _is_set(self.discord_token)

    @property
    def chat_credentials(self) -> list[str]:
        """The Slack and Discord credentials that are set (not empty), by variable name."""
        fields = ("slack_bot_token", "slack_app_token", "slack_signing_secret", "discord_token")
        return [_alias(name) for name in fields if _is_set(getattr(self, name))]

    def chat_platform_problem(self) -> str | None:
        """Why `rolecall serve` cannot start with these credentials, in one line naming what is set and
        what is missing (never a value); None when it can (the adapters check the rest)."""
        slack = [name for name in self.chat_credentials if name.startswith("SLACK_")]
        if slack and "SLACK_BOT_TOKEN" not in slack:
            return (
                f"{' and '.join(slack)} {'is' if len(slack) == 1 else 'are'} set but SLACK_BOT_TOKEN is not:"
                " Slack needs its bot token (xoxb-…) as well (see docs/slack.md)"
            )
        if not self.chat_platform_configured:
            return (
                "no chat platform configured: set SLACK_BOT_TOKEN (with SLACK_APP_TOKEN or"
                " SLACK_SIGNING_SECRET) or DISCORD_TOKEN; `rolecall chat` answers in the console"
            )
        return None

    @property
    def index_dir(self) -> Path:
        """Where the index lives: ROLECALL_INDEX_DIR, else <data dir>/index."""
        return self.index_dir_override or self.data_dir / "index"

    @property
    def qdrant_path(self) -> Path:
        """Qdrant local mode's folder: ROLECALL_QDRANT_PATH, else <data dir>/qdrant."""
        return self.qdrant_path_override or self.data_dir / "qdrant"

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
        return frozenset(int(item) for item in _split_list(self.discord_channels_list))  # digits: checked

    @property
    def discord_admin_servers(self) -> frozenset[int]:
        """Servers whose Manage Server members count as admins (none by default: a public bot can be
        added to anyone's server, where its adder has Manage Server)."""
        # digits: checked
        return frozenset(int(item) for item in _split_list(self.discord_admin_servers_list))

    @property
    def discord_shard_ids(self) -> tuple[int, ...]:
        """The shard ids this process runs (empty: all, when ROLECALL_DISCORD_SHARD_COUNT allows)."""
        try:
            ids = tuple(sorted({int(item) for item in _split_list(self.discord_shard_ids_list)}))
        except ValueError:
            raise ValueError("ROLECALL_DISCORD_SHARD_IDS must be shard numbers, e.g. 0,1") from None
        if any(i < 0 for i in ids):
            raise ValueError("ROLECALL_DISCORD_SHARD_IDS must be shard numbers, e.g. 0,1")
        return ids

    @property
    def database_path(self) -> Path:
        """The default SQLite file for feedback, audit and seen Slack events."""
        return self.data_dir / "rolecall.sqlite3"

    @property
    def database(self) -> Path | str:
        """ROLECALL_DATABASE_URL, else the SQLite file under the data folder."""
        return self.database_url.get_secret_value() if self.database_url else self.database_path


def _is_set(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value().strip())


def _alias(field_name: str) -> str:
    return Settings.model_fields[field_name].alias or field_name


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.replace(";", ",").split(",") if item.strip()]


def _quoted(items: list[str], most: int = 3) -> str:
    """Bad list entries for an error line: quoted (a newline shows as \\n), the first few, each cut short."""
    shown = ", ".join(repr(item if len(item) <= 40 else item[:40] + "…") for item in items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


PREFIX = "ROLECALL_"


def unknown_settings(env_file: object = Settings.model_config.get("env_file")) -> list[str]:
    """One warning per `ROLECALL_*` name in the environment or the .env file that is no setting, with the
    likely intended one when it is close; names only, never values (they may be secrets)."""
    known = {
        (field.alias or name).upper(): field.alias or name for name, field in Settings.model_fields.items()
    }
    by_suffix = {alias.removeprefix(PREFIX): alias for alias in known.values()}
    found = {name: "" for name in os.environ}
    warnings = []
    if isinstance(env_file, (str, Path)) and str(env_file) and Path(env_file).is_file():
        for line, name in _env_file_names(Path(env_file)):
            if name is None:
                warnings.append(f"{env_file} line {line} is no NAME=value line; ignored")
            else:
                found.setdefault(name, f" in {env_file}")
    for name, where in found.items():
        if not name.upper().startswith(PREFIX) or name.upper() in known:
            continue
        shown = name if name.isprintable() else repr(name)
        close = difflib.get_close_matches(name.upper().removeprefix(PREFIX), by_suffix, n=1)
        hint = f"; did you mean {by_suffix[close[0]]}?" if close else ""
        warnings.append(f"unknown setting {shown}{where} ignored{hint}")
    return warnings


def _env_file_names(env_file: Path) -> list[tuple[int, str | None]]:
    """(line, name) of each setting in a .env file; name None for a line that is no NAME=value. A file that
    is not UTF-8 text, or cannot be read, is a SettingsError (python-dotenv raised a traceback)."""
    from dotenv.parser import parse_stream

    try:
        text = env_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{env_file} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise SettingsError(f"cannot read {env_file}: {exc.strerror or type(exc).__name__}") from None
    return [
        (binding.original.line, None if binding.error else binding.key)
        for binding in parse_stream(io.StringIO(text))
        if binding.error or binding.key is not None
    ]


def load_settings(**overrides: object) -> Settings:
    """Read settings; invalid values become a SettingsError with one line per variable, naming it.

    A `ROLECALL_*` variable (or .env key) that is no setting is a warning line on stderr: other tools
    may set such names, so it does not stop the command. So is a support score set above the floor
    (`ROLECALL_SUPPORT_SCORE=1` is a fair way to show no supporting passages)."""
    env_file = overrides.get("_env_file", Settings.model_config.get("env_file"))
    warnings = unknown_settings(env_file)
    settings = _read_settings(**overrides)
    # Only when set: the default 0.30 above a floor lowered to, say, 0.25 adds nothing and loses nothing.
    if "support_score" in settings.model_fields_set and settings.support_score > settings.min_score:
        warnings.append(
            f"ROLECALL_SUPPORT_SCORE ({settings.support_score:g}) is above ROLECALL_MIN_SCORE ({settings.min_score:g}):"
            " no supporting passages are shown (they are those of the top k under the floor down to it)"
        )
    for warning in warnings:
        print(f"rolecall: warning: {warning}", file=sys.stderr)
    return settings


def _read_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            if not error["loc"]:  # a check across settings: its message names them
                lines.append(f"invalid settings: {str(error['msg']).removeprefix('Value error, ')}")
                continue
            field_name = str(error["loc"][0])
            field = Settings.model_fields.get(field_name)
            name = (field.alias if field is not None else None) or field_name
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "finite_number":
                message = "expected a finite number, not nan or infinity"
            lines.append(f"invalid setting {name}: {message}")
        raise SettingsError("\n".join(dict.fromkeys(lines))) from None


# Defaults that depend on the machine, as the table in docs/operations.md shows them.
_DEFAULT_TEXT = {
    "ROLECALL_DATA_DIR": "the per-user data folder (`~/.local/share/rolecall` on Linux)",
    "ROLECALL_INDEX_DIR": "`$ROLECALL_DATA_DIR/index`",
    "ROLECALL_KNOWLEDGE_DIR": "the bundled `knowledge/`",
    "ROLECALL_MODEL": "the packaged all-MiniLM-L6-v2",
    "ROLECALL_QDRANT_PATH": "`$ROLECALL_DATA_DIR/qdrant`",
    "ROLECALL_DATABASE_URL": "`sqlite:///$ROLECALL_DATA_DIR/rolecall.sqlite3`",
}


def settings_table() -> str:
    """Every setting as a Markdown table row (variable, default, meaning), in declaration order."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field in Settings.model_fields.values():
        name = field.alias or "?"
        if name in _DEFAULT_TEXT:
            default = _DEFAULT_TEXT[name]
        elif field.default is None or field.default == "":
            default = "(unset)"
        elif isinstance(field.default, bool):
            default = f"`{str(field.default).lower()}`"
        else:
            default = f"`{field.default}`"
        rows.append(f"| `{name}` | {default} | {field.description or ''} |")
    return "\n".join(rows)


def main_job() -> str:
    """The command `scripts/run.sh` runs: "serve" when any Slack or Discord credential is set (in the
    environment or `.env`; a partial set too, so that `rolecall serve` says what is missing), or when the
    settings are invalid so that `rolecall serve` reports them; else "chat"."""
    try:
        # No unknown-setting warnings here: the command chosen reads the settings again and warns once.
        return "serve" if _read_settings().chat_credentials else "chat"
    except SettingsError:
        return "serve"


if __name__ == "__main__":
    print(main_job() if sys.argv[1:] == ["--main-job"] else settings_table())
