"""Metrics as an operator reads them: a real Prometheus scrapes a real `giftwave serve
--workers 2`, and the gifts sent through both workers add up in its answers.

One server per backend for the module (``--workers 2``, its metrics on their own loopback
port and, for the bearer of the token, on the main port), and one Prometheus per backend
scraping both every second. Prometheus is Debian's package (scripts/services.sh installs it);
the test starts the binary itself, on 127.0.0.1 and a free port, with its own config and data.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from economy_client import AppFactory, assert_problem, economy_app
from prometheus_client.mmap_dict import MmapedDict
from serverproc import (
    ADMIN_TOKEN,
    HOST,
    free_port,
    giftwave_env,
    giftwave_executable,
    migrate,
)

from giftwave.db.urls import DatabaseUrl

__all__ = ["economy_app"]  # the fixture, for the in-process app's test

pytestmark = pytest.mark.slow

ROOT: Final = Path(__file__).resolve().parents[2]
ALERTS: Final = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD: Final = ROOT / "deploy" / "grafana" / "giftwave.json"
METRICS_TOKEN: Final = "metrics-token-for-the-tests-0123456789"
VIEWERS: Final = 4
GIFT_MAX: Final = 400  # sent in rounds until both workers have committed some (bounded)
WAIT_S: Final = 30.0
WORKERS: Final = ("--workers", "2")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is missing: scripts/services.sh installs Debian's prometheus"
    return path


def _http(base_url: str, **kw: Any) -> httpx.Client:
    # trust_env=False: no proxy from the environment ever sees this local traffic.
    return httpx.Client(base_url=base_url, trust_env=False, timeout=10.0, **kw)


@dataclass
class Served:
    base_url: str
    metrics_url: str
    metrics_dir: Path  # the serve's PROMETHEUS_MULTIPROC_DIR (under its TMPDIR)
    prometheus_url: str
    gifts_sent: int = 0
    refused_sent: int = 0


def _wait_answering(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with _http(url) as client:
                if client.get("/healthz" if "healthz" not in url else "").status_code < 500:
                    return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _prometheus_config(directory: Path, metrics_port: int, main_port: int) -> Path:
    config = directory / "prometheus.yml"
    # Two jobs: the loopback metrics port, and the main port with the bearer token.
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    {
                        "job_name": "metrics_port",
                        "static_configs": [{"targets": [f"{HOST}:{metrics_port}"]}],
                    },
                    {
                        "job_name": "main_port",
                        "authorization": {"credentials": METRICS_TOKEN},
                        "static_configs": [{"targets": [f"{HOST}:{main_port}"]}],
                    },
                ],
            }
        )
    )
    return config


@pytest.fixture(scope="module")
def served(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("metrics")
    env = giftwave_env(module_bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_GIFT_RATE_PER_S="0",
        GIFTWAVE_METRICS_TOKEN=METRICS_TOKEN,
    )
    migrate(env)
    main_port, metrics_port, prometheus_port = free_port(), free_port(), free_port()
    serve_tmp = directory / "serve-tmp"
    serve_tmp.mkdir()
    env.update(GIFTWAVE_METRICS_PORT=str(metrics_port), TMPDIR=str(serve_tmp))
    serve_log = directory / "serve.log"
    with serve_log.open("wb") as log:
        serve = subprocess.Popen(
            [giftwave_executable(), "serve", "--host", HOST, "--port", str(main_port), *WORKERS],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    prometheus_log = directory / "prometheus.log"
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        base_url = f"http://{HOST}:{main_port}"
        _wait_answering(base_url, serve, serve_log)
        config = _prometheus_config(directory, metrics_port, main_port)
        with prometheus_log.open("wb") as log:
            prometheus = subprocess.Popen(
                [
                    _tool("prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'tsdb'}",
                    f"--web.listen-address={HOST}:{prometheus_port}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        prometheus_url = f"http://{HOST}:{prometheus_port}"
        _wait_answering(f"{prometheus_url}/-/healthy", prometheus, prometheus_log)
        [metrics_dir] = serve_tmp.glob("giftwave-metrics-*")
        yield Served(base_url, f"http://{HOST}:{metrics_port}", metrics_dir, prometheus_url)
    finally:
        if prometheus is not None:
            _stop(prometheus)
        _stop(serve)


@dataclass(frozen=True)
class Scene:
    stream_id: str
    viewer_tokens: tuple[str, ...]


_scenes: dict[str, Scene] = {}


def _scene(served: Served) -> Scene:
    """A creator live, viewers with coins (made once per server)."""
    if served.base_url in _scenes:
        return _scenes[served.base_url]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with _http(served.base_url) as client:

        def register(n: int, role: str) -> tuple[int, str]:
            r = client.post(
                "/v1/auth/register",
                json={
                    "handle": f"m{role[:4]}{n}",
                    "email": f"m{role}{n}@example.org",
                    "password": "correct horse battery",
                    "birth_date": "1990-05-17",
                    "country": "US",
                    "role": role,
                },
            )
            assert r.status_code == 201, r.text
            return int(r.json()["user"]["id"]), str(r.json()["token"])

        _, creator_token = register(0, "creator")
        r = client.post(
            "/v1/streams",
            json={"title": "metrics"},
            headers={"Authorization": f"Bearer {creator_token}"},
        )
        assert r.status_code == 201, r.text
        stream_id = str(r.json()["id"])
        tokens = []
        for n in range(VIEWERS):
            user_id, token = register(n, "viewer")
            r = client.post(
                f"/v1/admin/users/{user_id}/coins",
                json={"coins": 1_000_000, "idempotency_key": f"metrics-grant-{user_id}"},
                headers=admin,
            )
            assert r.status_code == 200, r.text
            tokens.append(token)
    scene = _scenes[served.base_url] = Scene(stream_id, tuple(tokens))
    return scene


def _gift(served: Served, scene: Scene, n: int) -> None:
    # A new connection per gift: the workers take turns accepting them.
    with _http(served.base_url, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        r = client.post(
            f"/v1/streams/{scene.stream_id}/gifts",
            json={"gift_id": "finger_heart", "count": 1, "idempotency_key": f"mg-{n}"},
            headers={"Authorization": f"Bearer {scene.viewer_tokens[n % VIEWERS]}"},
        )
    assert r.status_code == 201, r.text
    served.gifts_sent += 1


def _refuse_a_gift(served: Served, scene: Scene) -> str:
    """A gift the server refuses; its code."""
    with _http(served.base_url) as client:
        r = client.post(
            f"/v1/streams/{scene.stream_id}/gifts",
            json={"gift_id": "no_such_gift", "count": 1, "idempotency_key": "mg-refused"},
            headers={"Authorization": f"Bearer {scene.viewer_tokens[0]}"},
        )
    assert r.status_code >= 400
    served.refused_sent += 1
    return str(r.json()["code"])


def _gifts_by_process(metrics_dir: Path) -> dict[int, float]:
    """giftwave_gifts_committed as each process's own file holds it."""
    counts: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[0] == "giftwave_gifts_committed" and value:
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def _query(served: Served, expr: str) -> list[dict[str, Any]]:
    with _http(served.prometheus_url) as client:
        r = client.get("/api/v1/query", params={"query": expr})
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


JOBS: Final = {"metrics_port", "main_port"}  # both ways of scraping


def _await_value(served: Served, expr: str, expected: float) -> dict[str, float]:
    """Until Prometheus answers ``expected`` for ``expr`` by each scrape job."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        seen = {s["metric"].get("job", ""): float(s["value"][1]) for s in _query(served, expr)}
        if seen == dict.fromkeys(JOBS, expected):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"{expr}: Prometheus says {seen}, expected {expected}")


def test_prometheus_sees_the_gifts_of_both_workers_add_up(served: Served) -> None:
    """The gift counter Prometheus scrapes is the sum over both workers: each worker's own
    count is below it (a scrape of one process, or of the parent, would show less or zero)."""
    scene = _scene(served)
    sent_before = served.gifts_sent
    n = 0
    while len(_gifts_by_process(served.metrics_dir)) < 2 or n < 20:
        assert n < GIFT_MAX, f"one worker took them all: {_gifts_by_process(served.metrics_dir)}"
        _gift(served, scene, 1000 + n)
        n += 1
    per_process = _gifts_by_process(served.metrics_dir)
    assert len(per_process) == 2, per_process
    assert sum(per_process.values()) == served.gifts_sent
    assert all(count < served.gifts_sent for count in per_process.values())
    _await_value(served, "sum by (job) (giftwave_gifts_committed_total)", float(served.gifts_sent))
    assert served.gifts_sent - sent_before == n
    # A refusal is counted by its stable code.
    code = _refuse_a_gift(served, scene)
    _await_value(
        served,
        f'sum by (job) (giftwave_gifts_refused_total{{code="{code}"}})',
        float(served.refused_sent),
    )


def test_metrics_on_the_main_port_need_the_token(served: Served) -> None:
    with _http(served.base_url) as client:
        bare = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})
        basic = client.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"})
        right = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    for refused in (bare, wrong, basic):
        assert_problem(refused, 401, "metrics_token")
        assert "giftwave_" not in refused.text
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")
    assert "giftwave_gifts_committed_total" in right.text


async def test_no_token_no_metrics_on_the_main_port(economy_app: AppFactory) -> None:
    """Not public by default: without GIFTWAVE_METRICS_TOKEN the route is not there."""
    async with economy_app() as client:
        r = await client.get("/metrics")
        with_some_token = await client.get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
    for answer in (r, with_some_token):
        assert_problem(answer, 404, "not_found")
        assert "giftwave_" not in answer.text


def _metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bgiftwave_[a-z0-9_]+", text))


def test_alerts_and_dashboard_name_only_metrics_that_exist(served: Served) -> None:
    """`promtool check rules` passes, Prometheus loaded every rule healthy, and every metric
    an alert or a dashboard panel names is in a real server's /metrics."""
    checked = subprocess.run(
        [_tool("promtool"), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    named_in_alerts = _metric_names(ALERTS.read_text())
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named_in_panels = _metric_names("\n".join(exprs))
    # A labelled counter shows once counted: a gift and a refusal here, whichever test ran
    # first on this server. The metrics port shows HTTP counts up to FLUSH_INTERVAL_S late
    # (api/request_observer.py).
    scene = _scene(served)
    _gift(served, scene, 9_000)
    _refuse_a_gift(served, scene)
    with _http(served.metrics_url) as client:
        for _ in range(100):
            exposed = _metric_names(client.get("/metrics").text)
            if not (named_in_alerts | named_in_panels) - exposed:
                break
            time.sleep(0.1)
    assert named_in_alerts
    assert named_in_panels
    assert named_in_alerts - exposed == set()
    assert named_in_panels - exposed == set()
    with _http(served.prometheus_url) as client:
        groups = client.get("/api/v1/rules").json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == ALERTS.read_text().count("- alert:")
    assert all(rule["health"] != "err" for rule in rules), rules
