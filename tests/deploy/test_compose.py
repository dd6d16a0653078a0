"""docker-compose.yml stays in step with the CLI and the settings (no Docker engine runs here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from router.cli import app
from router.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_services_and_shape() -> None:
    services = _compose()["services"]
    assert {"redis", "worker-1", "worker-2", "api", "simulator"} <= set(services)
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--appendfsync everysec" in redis_cmd
    assert "--maxmemory-policy noeviction" in redis_cmd
    assert "healthcheck" in services["redis"]
    assert services["simulator"]["profiles"] == ["sim"]


def test_commands_exist_in_the_cli() -> None:
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    for name, svc in _compose()["services"].items():
        if name == "redis":
            continue
        assert svc["command"][0] in commands, f"{name} runs unknown command {svc['command'][0]}"


def test_environment_names_are_settings() -> None:
    fields = {f"ROUTER_{name.upper()}" for name in Settings.model_fields}
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\b(ROUTER_[A-Z0-9_]+)\b", text))
    assert used, "compose sets no ROUTER_ variables"
    assert used <= fields, f"unknown settings in compose: {sorted(used - fields)}"


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed")
def test_docker_compose_config_validates() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("docker client has no compose plugin")
    proc = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"ROUTER_ADMIN_KEY": "x", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
