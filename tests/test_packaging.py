"""The Dockerfile, compose file and .env example agree with the code: settings, port, paths, health check."""

from __future__ import annotations

import re
import tomllib

import yaml

from bot import healthcheck, serve
from bot.settings import Settings
from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
SETTING_NAMES = {field.alias for field in Settings.model_fields.values()}


def dockerfile_env() -> dict[str, str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    pairs: dict[str, str] = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            pairs.update(re.findall(r"([A-Z_]+)=(\S+)", line))
    return pairs


def test_every_variable_the_image_sets_is_a_setting_rolecall_reads() -> None:
    env = dockerfile_env()
    ours = {name for name in env if name.startswith(("ROLECALL_", "SLACK_", "DISCORD_"))}
    assert ours and ours <= SETTING_NAMES
    assert env["HF_HUB_OFFLINE"] == "1"
    # A non-editable install cannot find the repo's knowledge/ next to bot/: the image names it.
    assert env["ROLECALL_KNOWLEDGE_DIR"] == "/app/knowledge" and "COPY knowledge ./knowledge" in DOCKERFILE


def test_port_volume_and_health_check_line_up() -> None:
    env = dockerfile_env()
    assert f"EXPOSE {env['ROLECALL_HTTP_PORT']}" in DOCKERFILE
    assert f'VOLUME ["{env["ROLECALL_DATA_DIR"]}"]' in DOCKERFILE
    assert 'CMD ["python", "-m", "bot.healthcheck"]' in DOCKERFILE
    assert healthcheck.HEALTH_PATH == serve.HEALTH_PATH
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, flags=re.MULTILINE)
    assert DOCKERFILE.index("USER ") > DOCKERFILE.index("chown")
    service = COMPOSE["services"]["rolecall"]
    assert service["env_file"] == ".env"
    assert [p.split(":")[-1] for p in service["ports"]] == [env["ROLECALL_HTTP_PORT"]]
    assert any(v.endswith(":" + env["ROLECALL_DATA_DIR"]) for v in service["volumes"])
    assert set(service["environment"]) <= SETTING_NAMES


def test_the_image_pins_the_same_torch_and_copies_what_exists() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pin = next(d for d in project["project"]["dependencies"] if d.startswith("torch"))
    assert f"ARG TORCH_VERSION={pin.removeprefix('torch==')}" in DOCKERFILE
    for source in re.findall(r"^COPY (.+) \S+$", DOCKERFILE, flags=re.MULTILINE):
        for name in source.split():
            assert (REPO / name).exists(), name
    packages = set(project["tool"]["setuptools"]["packages"])
    assert packages <= {m for m in re.findall(r"^COPY (\w+) ", DOCKERFILE, flags=re.MULTILINE)}


def test_secrets_stay_out_of_the_image_and_the_example_names_real_settings() -> None:
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and ".venv" in ignored
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    names = set(re.findall(r"^#? ?([A-Z_]+)=", example, flags=re.MULTILINE))
    assert names and names <= SETTING_NAMES
