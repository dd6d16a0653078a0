"""docker-compose.yml parses (Debian's docker-compose, no Docker engine needed) and stays in step with the
CLI and the settings."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


def _config(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` (Debian's docker-compose 1.29, which scripts/test.sh installs): it parses
    the file, checks it against the compose schema, interpolates the environment and prints the result."""
    binary = shutil.which("docker-compose")
    assert binary is not None, "docker-compose is not installed (apt-get install docker-compose)"
    return subprocess.run(
        [binary, "-f", str(path), "config"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **env},
        cwd=path.parent,
        timeout=120,
    )


def test_compose_parses_and_resolves() -> None:
    proc = _config(ROOT / "docker-compose.yml", ROUTER_ADMIN_KEY="k")
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    # worker-2 takes worker-1's shape through the YAML merge key, with its own consumer name
    assert services["worker-2"]["command"] == ["worker", "--consumer", "worker-2"]
    assert services["worker-2"]["environment"]["ROUTER_REDIS_URL"] == "redis://redis:6379/0"
    assert services["worker-2"]["stop_signal"] == "SIGTERM"
    assert services["api"]["environment"]["ROUTER_ADMIN_KEY"] == "k"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_refuses_the_api_without_an_admin_key() -> None:
    proc = _config(ROOT / "docker-compose.yml")
    assert proc.returncode != 0
    assert "set ROUTER_ADMIN_KEY for the API" in proc.stderr


def test_compose_refuses_an_option_it_does_not_know(tmp_path: Path) -> None:
    """The check is a real parser: a misspelt option fails the schema."""
    text = (ROOT / "docker-compose.yml").read_text()
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("    depends_on:", "    depend_on:", 1))
    proc = _config(broken, ROUTER_ADMIN_KEY="k")
    assert proc.returncode != 0
    assert "depend_on" in proc.stderr
