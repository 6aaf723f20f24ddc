"""compose.yaml and compose.scale.yaml, checked without Docker: real settings, consistent replicas, ports, volumes."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import Settings, load_settings
from tests.conftest import REPO

SETTING_NAMES = {field.alias for field in Settings.model_fields.values()}
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def interpolate(value: Any) -> str:
    """`${VAR:-default}` as Compose would resolve it with VAR unset."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): interpolate(v) for k, v in env.items()}


def rolecall_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == "rolecall:latest"}


def replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services running `rolecall serve` (the image's default command) all the time."""
    return {
        name: s
        for name, s in rolecall_services(compose).items()
        if "command" not in s and not s.get("profiles")
    }


@pytest.mark.parametrize("name", ["compose.yaml", "compose.scale.yaml"])
def test_every_setting_a_compose_file_sets_exists_and_is_valid(name: str, tmp_path: Path) -> None:
    compose = load(name)
    for service_name, service in rolecall_services(compose).items():
        env = environment(service)
        unknown = {k for k in env if k.startswith(("ROLECALL_", "SLACK_", "DISCORD_"))} - SETTING_NAMES
        assert not unknown, f"{name}: {service_name} sets {unknown}, which are not settings"
        load_settings(**{k: v for k, v in env.items() if k in SETTING_NAMES})  # values pass validation
    for service_name, service in compose["services"].items():
        image = str(service.get("image", ""))
        if image and image != "rolecall:latest":
            assert re.search(r":v?\d+(\.\d+)+", image), (
                f"{name}: {service_name} image {image} has no pinned tag"
            )
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in (compose.get("volumes") or {}), f"{name}: volume {source} is not declared"
        for dependency in service.get("depends_on") or []:
            assert dependency in compose["services"], f"{name}: {service_name} depends on {dependency}"
    host_ports = [
        str(p).rsplit(":", 1)[0] for s in compose["services"].values() for p in s.get("ports") or []
    ]
    assert len(host_ports) == len(set(host_ports)), f"{name}: a host port is published twice"


def test_the_scaled_deployment_is_consistent() -> None:
    compose = load("compose.scale.yaml")
    services = compose["services"]
    serving = replicas(compose)
    assert len(serving) >= 2
    envs = {name: environment(s) for name, s in serving.items()}

    # one Qdrant and one Postgres, both services of this file, for every replica
    for env in envs.values():
        assert env["ROLECALL_VECTOR_STORE"] == "qdrant" and env.get("SLACK_APP_TOKEN") == ""
        qdrant = urllib.parse.urlsplit(env["ROLECALL_QDRANT_URL"])
        assert (
            qdrant.hostname in services and qdrant.port == 6333 and "healthcheck" in services[qdrant.hostname]
        )
        database = urllib.parse.urlsplit(env["ROLECALL_DATABASE_URL"])
        assert database.scheme == "postgresql" and database.hostname in services
        postgres = environment(services[database.hostname])
        assert (database.username, database.password, database.path) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            "/" + postgres["POSTGRES_DB"],
        )
    assert len({e["ROLECALL_QDRANT_URL"] for e in envs.values()}) == 1
    assert len({e["ROLECALL_DATABASE_URL"] for e in envs.values()}) == 1

    # the Discord shards: the same count everywhere, every shard run by exactly one replica
    counts = {int(e["ROLECALL_DISCORD_SHARD_COUNT"]) for e in envs.values()}
    assert len(counts) == 1
    shards = sorted(int(i) for e in envs.values() for i in e["ROLECALL_DISCORD_SHARD_IDS"].split(","))
    assert shards == list(range(counts.pop()))

    # each replica keeps its own data volume; the load balancer sends /slack/events to every replica
    data = [str(v).split(":")[0] for s in serving.values() for v in s["volumes"] if str(v).endswith(":/data")]
    assert len(data) == len(serving) == len(set(data))
    balancer = compose["configs"]["nginx"]["content"]
    assert "location = /slack/events" in balancer
    for name, env in envs.items():
        assert f"server {name}:{env.get('ROLECALL_HTTP_PORT', '3000')} " in balancer
        assert name in services["lb"]["depends_on"]

    # the one-shot reindex job: same stores, `rolecall index`, only with --profile jobs
    job = services["reindex"]
    assert job["command"] == ["rolecall", "index"] and job["profiles"] == ["jobs"]
    assert {k: environment(job)[k] for k in ("ROLECALL_QDRANT_URL", "ROLECALL_DATABASE_URL")} == {
        k: next(iter(envs.values()))[k] for k in ("ROLECALL_QDRANT_URL", "ROLECALL_DATABASE_URL")
    }
