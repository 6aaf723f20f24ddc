"""Settings from the environment and .env, one error line per invalid variable, and the documented table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import Settings, SettingsError, default_data_dir, load_settings, main_job, settings_table
from tests.conftest import REPO


def _one_line_error(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> str:
    """The SettingsError message for `variable=value`, checked to be one line that names the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"invalid setting {variable}: ") and "\n" not in message
    return message


def test_defaults_for_the_operations_settings() -> None:
    settings = load_settings()
    assert settings.rate_limit == 10
    assert settings.max_question_chars == 500
    assert settings.log_format == "text" and settings.log_level == "INFO"
    assert settings.http_port == 3000


def test_a_dot_env_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(  # conftest runs every test in tmp_path
        "ROLECALL_RATE_LIMIT=3\nROLECALL_LOG_FORMAT=json\nROLECALL_LOG_LEVEL=debug\nSLACK_BOT_TOKEN=xoxb-from-file\n"
    )
    monkeypatch.setenv("ROLECALL_RATE_LIMIT", "7")
    settings = load_settings()
    assert settings.rate_limit == 7
    assert settings.log_format == "json" and settings.log_level == "DEBUG"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-from-file"


def test_every_invalid_variable_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLECALL_TOP_K", "many")
    monkeypatch.setenv("ROLECALL_LOG_FORMAT", "xml")
    monkeypatch.setenv("ROLECALL_MAX_QUESTION_CHARS", "5")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "not-shown")
    assert main(["ask", "what does an SRE do?"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    for variable, line in zip(
        ("ROLECALL_TOP_K", "ROLECALL_LOG_FORMAT", "ROLECALL_MAX_QUESTION_CHARS"), lines, strict=True
    ):
        assert line.startswith(f"rolecall: error: invalid setting {variable}: ")
    assert "xml" not in lines[1] and "many" not in lines[0]  # values are not echoed: they may be secrets
    with pytest.raises(SettingsError, match=r"^invalid setting ROLECALL_LOG_LEVEL: "):
        monkeypatch.delenv("ROLECALL_TOP_K")
        monkeypatch.delenv("ROLECALL_LOG_FORMAT")
        monkeypatch.delenv("ROLECALL_MAX_QUESTION_CHARS")
        monkeypatch.setenv("ROLECALL_LOG_LEVEL", "loud")
        load_settings()


def test_the_operations_guide_lists_every_setting_with_its_default() -> None:
    guide = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert settings_table() in guide, "regenerate the table with: python -m bot.settings"
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", guide, flags=re.MULTILINE))
    assert documented >= {field.alias for field in Settings.model_fields.values()}
    assert "| `ROLECALL_RATE_LIMIT` | `10` |" in guide


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DISCORD_API_URL", "http://[::1"),
        ("DISCORD_GATEWAY_URL", "gateway.example"),
        ("SLACK_API_URL", "https://slack.example:port/api/"),
        ("ROLECALL_DATABASE_URL", "postgresql://rc:hunter2@db.example:fivefour/rolecall"),
        ("ROLECALL_DATABASE_URL", "postgresql://rc:hunter2%zz@db.example/rolecall"),
    ],
)
def test_a_malformed_url_is_one_line_naming_it_without_its_password(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    # These used to pass the settings and fail later with a traceback, or with the driver quoting the password.
    assert "hunter2" not in _one_line_error(monkeypatch, variable, value)


def test_the_main_job_is_serve_when_a_token_is_only_in_dot_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scripts/run.sh asks this; it looked only at the environment, so a token in .env got the console chat.
    for name in ("SLACK_BOT_TOKEN", "DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main_job() == "chat"
    (tmp_path / ".env").write_text("DISCORD_TOKEN=from-file\n")  # conftest runs every test in tmp_path
    assert main_job() == "serve"
    # invalid settings go to `rolecall serve`, which names the bad variable in one line
    (tmp_path / ".env").write_text("ROLECALL_TOP_K=many\n")
    assert main_job() == "serve"


def test_empty_folder_variables_mean_the_defaults_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty `ROLECALL_INDEX_DIR=` in compose became Path(""): an index built in the working directory.
    for name in ("ROLECALL_INDEX_DIR", "ROLECALL_DATA_DIR", "ROLECALL_QDRANT_PATH"):
        monkeypatch.setenv(name, "  ")
    settings = load_settings()
    assert settings.data_dir == default_data_dir()
    assert settings.index_dir == settings.data_dir / "index"
    assert settings.qdrant_path == settings.data_dir / "qdrant"


def test_an_infinite_file_size_limit_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLECALL_MAX_FILE_MB", "inf")
    with pytest.raises(SettingsError, match="invalid setting ROLECALL_MAX_FILE_MB") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ("U1,foo:bar,discord:abc", "'U1'"),  # no platform; an unknown platform; a Discord id with letters
        ("U999", "'U999'"),  # a Slack id without `slack:`: it used to make nobody an admin, silently
        ("slack:U0123ABCD,discord:abc", "'discord:abc'"),
        ("slack:u0123abcd", "'slack:u0123abcd'"),  # Slack writes its ids in capitals: this one never matches
        ("slack:", "'slack:'"),
        ("discord:12 34", "'discord:12 34'"),
    ],
)
def test_a_malformed_admin_entry_is_one_line_naming_it_with_the_right_form(
    monkeypatch: pytest.MonkeyPatch, value: str, bad: str
) -> None:
    message = _one_line_error(monkeypatch, "ROLECALL_ADMINS", value)
    assert bad in message
    assert "slack:U0123ABCD" in message and "discord:123456789012345678" in message  # the form to write


def test_well_formed_admin_entries_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLECALL_ADMINS", " slack:U0123ABCD, slack:W4567EFGH;discord:123456789012345678 ,")
    assert load_settings().admins == {"slack:U0123ABCD", "slack:W4567EFGH", "discord:123456789012345678"}


@pytest.mark.parametrize(
    ("variable", "value", "bad"),
    [
        ("ROLECALL_DISCORD_ADMIN_SERVERS", "abc", "'abc'"),
        ("ROLECALL_DISCORD_ADMIN_SERVERS", "123,-5", "'-5'"),
        ("ROLECALL_DISCORD_CHANNELS", "#general", "'#general'"),
        ("ROLECALL_DISCORD_CHANNELS", "1_000", "'1_000'"),  # int() took this one
    ],
)
def test_discord_id_lists_are_checked_when_the_settings_are_read(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, bad: str
) -> None:
    # They used to be checked only when the Discord adapter started (never without DISCORD_TOKEN).
    message = _one_line_error(monkeypatch, variable, value)
    assert bad in message and "digits" in message


def test_discord_id_lists_are_read_as_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLECALL_DISCORD_CHANNELS", "1, 2;3")
    monkeypatch.setenv("ROLECALL_DISCORD_ADMIN_SERVERS", "123456789012345678")
    settings = load_settings()
    assert settings.discord_channels == {1, 2, 3}
    assert settings.discord_admin_servers == {123456789012345678}


def test_a_misspelled_setting_is_one_warning_line_with_the_likely_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ROLECALL_TOPK=5 used to run with the default 3 and say nothing.
    monkeypatch.setenv("ROLECALL_TOPK", "5")
    monkeypatch.setenv("ROLECALL_QDRANT_APIKEY", "sekrit-value")
    monkeypatch.setenv("ROLECALL_ZZZZ", "1")
    (tmp_path / ".env").write_text("ROLECALL_TOPK=5\nROLECALL_LOGLEVEL=debug\nOTHER_TOOL_SETTING=1\n")
    settings = load_settings()
    assert settings.top_k == 3 and settings.log_level == "INFO"
    lines = capsys.readouterr().err.splitlines()
    assert sorted(lines) == [
        "rolecall: warning: unknown setting ROLECALL_LOGLEVEL in .env ignored; did you mean ROLECALL_LOG_LEVEL?",
        "rolecall: warning: unknown setting ROLECALL_QDRANT_APIKEY ignored; did you mean ROLECALL_QDRANT_API_KEY?",
        "rolecall: warning: unknown setting ROLECALL_TOPK ignored; did you mean ROLECALL_TOP_K?",  # once
        "rolecall: warning: unknown setting ROLECALL_ZZZZ ignored",
    ]


def test_a_dot_env_that_is_not_utf8_is_one_error_line(tmp_path: Path) -> None:
    # python-dotenv raised a UnicodeDecodeError traceback from every command
    (tmp_path / ".env").write_bytes("ROLECALL_TOP_K=4\n".encode("utf-16"))
    with pytest.raises(SettingsError, match=r"^\.env is not UTF-8 text \(byte 0\); save it as UTF-8$"):
        load_settings()
    (tmp_path / ".env").write_bytes(b"# r\xe9sum\xe9 bot\nROLECALL_TOP_K=4\n")  # Latin-1
    with pytest.raises(SettingsError, match=r"^\.env is not UTF-8 text \(byte 3\)"):
        load_settings()


def test_a_dot_env_line_that_is_no_setting_is_named_once_and_the_rest_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text('ROLECALL_MIN_SCORE="0.5\nROLECALL_TOP_K=4\n')
    assert load_settings().top_k == 4
    assert capsys.readouterr().err.splitlines() == [
        "rolecall: warning: .env line 1 is no NAME=value line; ignored"
    ]


def test_a_platform_name_behind_the_prefix_is_pointed_to_its_real_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLECALL_DISCORD_TOKEN", "not-shown")
    load_settings()
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("unknown setting ROLECALL_DISCORD_TOKEN ignored; did you mean DISCORD_TOKEN?")


def test_known_settings_in_any_case_and_the_example_dot_env_give_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("rolecall_top_k", "4")  # pydantic-settings reads names case-insensitively
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    (tmp_path / ".env").write_text(re.sub(r"^# ([A-Z_]+=)", r"\1", example, flags=re.MULTILINE))
    assert load_settings().top_k == 4
    assert capsys.readouterr().err == ""


def test_the_project_sets_no_rolecall_variable_that_is_not_a_setting() -> None:
    # Scripts, compose files and the image set these; none of them may trigger the unknown-setting warning.
    known = {field.alias for field in Settings.model_fields.values()}
    files = [REPO / "Dockerfile", REPO / ".env.example", *REPO.glob("*.yaml"), *REPO.glob("*.yml")]
    for folder in ("bot", "adapters", "index", "bench", "eval", "scripts", ".ci"):
        files += [
            p
            for p in (REPO / folder).rglob("*")
            if p.is_file() and p.suffix in ("", ".py", ".sh", ".yaml", ".yml")
        ]
    used = {
        name
        for path in files
        for name in re.findall(r"\bROLECALL_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8"))
    }
    assert used and used <= known


def test_the_main_job_does_not_warn_the_command_it_picks_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLECALL_TOPK", "5")
    assert main_job() == "chat"
    assert capsys.readouterr().err == ""  # scripts/run.sh then runs `rolecall chat`, which warns once


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (["SLACK_APP_TOKEN"], "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: "),
        (["SLACK_SIGNING_SECRET"], "SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not: "),
        (
            ["SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"],
            "SLACK_APP_TOKEN and SLACK_SIGNING_SECRET are set but SLACK_BOT_TOKEN is not: ",
        ),
        # Slack would not run
        (
            ["SLACK_APP_TOKEN", "DISCORD_TOKEN"],
            "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: ",
        ),
    ],
)
def test_a_partial_slack_setup_is_one_line_naming_what_is_set_and_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variables: list[str], expected: str
) -> None:
    # It used to say "no chat platform configured", as if nothing had been set, and run.sh chose the console chat.
    for name in variables:
        monkeypatch.setenv(name, f"secret-{name.lower()}")
    assert main_job() == "serve"  # so that scripts/run.sh's `rolecall serve` says what is wrong
    assert main(["serve"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"rolecall: error: {expected}") and "docs/slack.md" in line
    assert "secret-" not in line


def test_a_slack_bot_token_alone_is_one_line_naming_the_two_ways_to_connect(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-value")
    assert main_job() == "serve"
    assert main(["serve"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [
        "rolecall: error: SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor"
        " SLACK_SIGNING_SECRET (HTTP events at /slack/events) is: set one of them"
    ]


def test_empty_credentials_as_in_the_example_dot_env_mean_the_console_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "SLACK_BOT_TOKEN=\nSLACK_APP_TOKEN=\nDISCORD_TOKEN=\nSLACK_SIGNING_SECRET=' '\n"
    )
    assert main_job() == "chat"


FLOAT_SETTINGS = [field.alias for field in Settings.model_fields.values() if field.annotation is float]


@pytest.mark.parametrize("variable", FLOAT_SETTINGS)
@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_nan_and_infinity_are_refused_by_every_number_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    # ROLECALL_MIN_SCORE=nan said "Input should be less than or equal to 1".
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value) == f"invalid setting {variable}: expected a finite number, not nan or infinity"


def test_the_float_settings_are_the_ones_expected() -> None:
    assert set(FLOAT_SETTINGS) == {
        "ROLECALL_MIN_SCORE",
        "ROLECALL_SUPPORT_SCORE",
        "ROLECALL_NEAREST_SCORE",
        "ROLECALL_MAX_FILE_MB",
    }


def test_a_support_score_above_the_floor_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Supporting passages are those below the floor that reach ROLECALL_SUPPORT_SCORE: above the floor
    # there are none, and the setting silently did nothing. It is said, not refused: 1 is a fair way to
    # turn supporting passages off (a review found the error stopped `rolecall serve` for it).
    monkeypatch.setenv("ROLECALL_SUPPORT_SCORE", "0.5")
    assert load_settings().support_score == 0.5
    assert capsys.readouterr().err == (
        "rolecall: warning: ROLECALL_SUPPORT_SCORE (0.5) is above ROLECALL_MIN_SCORE (0.42): no supporting"
        " passages are shown (they are those of the top k under the floor down to it)\n"
    )
    monkeypatch.setenv("ROLECALL_MIN_SCORE", "0.5")  # equal: no supporting passages, and nothing to say
    assert load_settings().support_score == 0.5 and capsys.readouterr().err == ""


def test_a_floor_lowered_below_the_default_support_score_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default support score (0.30) is not the operator's choice: with a floor of 0.25 every passage
    # it would add clears the floor anyway, so nothing is lost and nothing is said.
    monkeypatch.setenv("ROLECALL_MIN_SCORE", "0.25")
    assert load_settings().min_score == 0.25


@pytest.mark.parametrize("guide", ["discord.md", "slack.md"])
def test_the_platform_guides_give_the_same_defaults_as_the_settings_table(guide: str) -> None:
    # docs/discord.md gave DISCORD_API_URL and DISCORD_GATEWAY_URL defaults that operations.md lists as unset.
    defaults = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]*?) \|", settings_table(), flags=re.MULTILINE))
    rows = re.findall(
        r"^\| `([A-Z_]+)` \| ([^|]*?) ?\|", (REPO / "docs" / guide).read_text("utf-8"), re.MULTILINE
    )
    unset = {"", "unset", "empty", "(unset)"}
    checked = [name for name, _ in rows if name in defaults]
    assert len(checked) >= 5
    for name, default in rows:
        if name in defaults:
            expected = defaults[name]
            assert default == expected or {default, expected} <= unset, (
                f"{guide}: {name} default {default!r}, settings {expected!r}"
            )
