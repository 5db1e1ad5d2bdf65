"""The Docker image's start command, run outside Docker the way the image runs it (no Docker engine here),
and the Dockerfile and compose file checked for what they must say."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.servers import free_port, wait_until_healthy

ROOT = Path(__file__).parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def image_environment() -> dict[str, str]:
    """The Dockerfile's ENV settings (its last stage), as the container sees them."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    last_stage = text.rsplit("\nFROM ", 1)[1]
    found: dict[str, str] = {}
    for line in last_stage.splitlines():
        if line.startswith("ENV "):
            found.update(re.findall(r"(\w+)=(\S+)", line))
    return found


@pytest.mark.slow
def test_the_image_command_migrates_loads_the_demo_and_serves_two_workers(tmp_path: Path):
    stale_metrics = tmp_path / "metrics"
    stale_metrics.mkdir()
    (stale_metrics / "counter_1.db").write_bytes(b"left by a previous run")
    port = free_port()
    env = {
        **os.environ,
        **image_environment(),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "QUANTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'quantdesk.db'}",  # /data in the image
        "QUANTDESK_HOST": "127.0.0.1",
        "QUANTDESK_PORT": str(port),
        "QUANTDESK_DEMO": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(stale_metrics),
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(ENTRYPOINT)], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", server, log)
            for _ in range(6):  # spread over both workers
                assert httpx.get(f"http://127.0.0.1:{port}/api/v1/instruments", timeout=10).status_code == 200
            instruments = httpx.get(f"http://127.0.0.1:{port}/api/v1/instruments", timeout=10).json()
            assert len(instruments) == 6
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            served = re.search(
                r'quantdesk_http_requests_total\{method="GET",route="/api/v1/instruments",status="200"\} (\S+)', metrics
            )
            assert served is not None
            assert float(served.group(1)) >= 7
            assert not (stale_metrics / "counter_1.db").exists()
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(30) == 0
    lines = log.read_text().splitlines()
    access = [json.loads(line) for line in lines if line.startswith("{") and '"quantdesk.access"' in line]
    assert access
    assert all(entry["request_id"] and entry["status"] == 200 for entry in access)
    assert sum("Started server process" in line for line in lines) == 2
    assert not [line for line in lines if "uvicorn.access" in line]  # one access line per request: quantdesk's


def test_the_dockerfile_is_multi_stage_slim_unprivileged_and_checks_its_health():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert len(stages) == 2
    assert all(image.endswith("-slim") for image in stages)
    assert re.search(r"^USER quantdesk$", text, flags=re.MULTILINE)
    assert "HEALTHCHECK" in text
    assert "/health" in text
    assert "uv sync --frozen" in text  # exactly the lock
    assert 'ENTRYPOINT ["quantdesk-entrypoint"]' in text
    assert "COPY docker/entrypoint.sh /usr/local/bin/quantdesk-entrypoint" in text
    assert os.access(ENTRYPOINT, os.X_OK)


def test_compose_runs_two_workers_on_postgresql_with_a_volume():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    api, db = compose["services"]["api"], compose["services"]["db"]
    assert api["build"] == "."
    assert api["environment"]["QUANTDESK_WORKERS"] == "2"
    assert api["environment"]["QUANTDESK_DATABASE_URL"].startswith("postgresql://")
    assert "@db:5432/" in api["environment"]["QUANTDESK_DATABASE_URL"]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert db["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    makefile = (ROOT / "Makefile").read_text()
    assert "docker-up:" in makefile
    assert "docker compose up -d --build" in makefile
    assert "docker compose down" in makefile
