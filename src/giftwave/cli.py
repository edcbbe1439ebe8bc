"""``giftwave``: serve, demo, migrate, ledger verify / balance, bench."""

from __future__ import annotations

import enum
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console

from giftwave.config import ConfigError, Settings, load_settings
from giftwave.tuning import tune_runtime

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="The live-stream gift economy engine."
)
ledger_app = typer.Typer(no_args_is_help=True, help="Inspect and check the ledger.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks, each beside its baseline.")
app.add_typer(ledger_app, name="ledger")
app.add_typer(bench_app, name="bench")
config_app = typer.Typer(no_args_is_help=True, help="Check the settings before serving.")
app.add_typer(config_app, name="config")
push_app = typer.Typer(no_args_is_help=True, help="Web Push notices (docs/notifications.md).")
app.add_typer(push_app, name="push")
err = Console(stderr=True)
out = Console()
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
# Options that several commands take, said once.
HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)]
MeasuredSeconds = Annotated[float, typer.Option(help="Length of the measured phase.", min=1)]
KeepAliveConnections = Annotated[int, typer.Option(help="Keep-alive connections.", min=1)]


@app.callback()
def _start() -> None:
    """Every command logs through one setup (logs.py), configured before it runs."""
    from giftwave.logs import setup_logging_from_environment

    setup_logging_from_environment()


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        err.print(f"[red]giftwave: {exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (costs ~5% at thousands of gifts/s).")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes; each has its own posting engine (SQLite and PostgreSQL "
            "serialize their batches).",
            min=1,
            max=64,
        ),
    ] = 1,
) -> None:
    """Serve the API (the database must be migrated: `giftwave migrate`)."""
    from giftwave.metrics_listener import serve_metrics_port, share_metrics_between_processes

    share_metrics_between_processes()  # before the app's modules import prometheus_client
    import uvicorn

    from giftwave.api.app import UVICORN_OPTIONS, create_app
    from giftwave.api.drain import graceful_shutdown_s
    from giftwave.db.engine import SchemaOutOfDate, check_schema, make_engine
    from giftwave.db.urls import parse_database_url

    settings = _settings()
    _refuse_unknown_variables()  # a misspelt limit must not leave the default in force
    db = make_engine(parse_database_url(settings.database_url))
    try:
        check_schema(db)
    except SchemaOutOfDate as exc:
        err.print(f"[red]giftwave: {exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    try:
        serve_metrics_port(settings)
    except OSError as exc:
        err.print(f"[red]giftwave: GIFTWAVE_METRICS_PORT: {exc}[/red]")
        raise typer.Exit(2) from None
    _say_open_files_limit(workers)
    if workers == 1:
        tune_runtime()
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            **UVICORN_OPTIONS,
            access_log=access_log,
            timeout_graceful_shutdown=graceful_shutdown_s(settings.drain_timeout_s),
            log_config=None,  # uvicorn's lines go through our one handler (logs.py), redacted
        )
        return
    if settings.sandbox_webhook_secret is None:
        # Every worker must sign and verify the sandbox's webhooks with the same secret.
        os.environ["GIFTWAVE_SANDBOX_WEBHOOK_SECRET"] = secrets.token_urlsafe(32)
    uvicorn.run(
        "giftwave.api.app:app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        **UVICORN_OPTIONS,
        access_log=access_log,
        timeout_graceful_shutdown=graceful_shutdown_s(settings.drain_timeout_s),
        log_config=None,  # each worker sets up logging in app_from_environment
    )


def _say_open_files_limit(workers: int) -> None:
    """Raise the descriptor limit to the hard one and say, once at start, how many viewer
    sockets it allows: past it, connections fail with "Too many open files"."""
    import logging

    from giftwave.tuning import RESERVED_DESCRIPTORS, raise_open_files_limit

    limit = raise_open_files_limit()
    raised = f" (raised from {limit.was})" if limit.was != limit.soft else ""
    logging.getLogger("giftwave.serve").info(
        "open files limit (RLIMIT_NOFILE): soft %d%s, hard %d: about %d client sockets"
        " (viewers) per server process, %d descriptors kept for the rest; %d process(es)",
        limit.soft,
        raised,
        limit.hard,
        limit.sockets,
        RESERVED_DESCRIPTORS,
        workers,
    )


@app.command()
def migrate() -> None:
    """Bring the database named by GIFTWAVE_DATABASE_URL up to the newest schema."""
    from giftwave.db.engine import make_engine
    from giftwave.db.engine import migrate as run_migrations
    from giftwave.db.urls import parse_database_url

    settings = _settings()
    engine = make_engine(parse_database_url(settings.database_url))
    run_migrations(engine)
    engine.dispose()
    out.print("database is up to date")


@app.command()
def demo(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open the live room in a browser.")
    ] = True,
    audience: Annotated[
        bool, typer.Option("--audience/--no-audience", help="Run the simulated audience.")
    ] = True,
) -> None:
    """Seed a demo economy (a creator live with a goal, viewers with coins, gifts already
    sent), serve it, and keep a small simulated audience gifting in the room."""
    from giftwave.demo import run_demo

    run_demo(_settings(), host, port, open_browser=browser, audience=audience)


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check every ledger invariant; exit 1 naming each problem."""
    from rich.progress import Progress

    from giftwave.db.engine import make_engine
    from giftwave.db.urls import parse_database_url
    from giftwave.ledger.verify import verify_ledger

    engine = make_engine(parse_database_url(_settings().database_url))
    with Progress(console=err, transient=True) as progress, engine.connect() as conn:
        task = progress.add_task("checking the hash chain", total=None)
        report = verify_ledger(conn, progress=lambda n: progress.update(task, completed=n))
    engine.dispose()
    summary = f"{report.accounts} accounts, {report.transfers} transfers, {report.batches} batches"
    if report.ok:
        out.print(f"ledger verify: clean ({summary})")
        return
    for problem in report.problems:
        out.print(f"[red]PROBLEM[/red] {problem}", highlight=False)
    out.print(f"ledger verify: {len(report.problems)} problem(s) ({summary})")
    raise typer.Exit(1)


@ledger_app.command("balance")
def ledger_balance(account: Annotated[str, typer.Argument(help="Account id or name.")]) -> None:
    """Show one account's balances."""
    from giftwave.db.engine import make_engine
    from giftwave.db.urls import parse_database_url
    from giftwave.ledger.accounts import find_account

    engine = make_engine(parse_database_url(_settings().database_url))
    with engine.connect() as conn:
        found = find_account(conn, account)
    engine.dispose()
    if found is None:
        err.print(f"giftwave: no account {account!r}")
        raise typer.Exit(1)
    out.print(
        f"{found.name} (#{found.id}, {found.asset}, flags {found.flags.name or 'none'})\n"
        f"  balance   {found.balance}\n  available {found.available}\n"
        f"  debits    posted {found.debits_posted}  pending {found.debits_pending}\n"
        f"  credits   posted {found.credits_posted}  pending {found.credits_pending}",
        highlight=False,
    )


class _BenchResult(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


def _bench(
    as_json: bool,
    run: Callable[[Callable[[str], None]], _BenchResult | dict[str, Any]],
    *,
    cannot_run: tuple[type[Exception], int] | None = None,
) -> None:
    """Run one benchmark, given where its progress lines go, and print its result: one JSON
    object on a line with --json (and no progress: stdout must be that object alone), else
    indented. ``cannot_run``: the error that means it cannot run here (a service or a tool
    missing), said in one line, and the exit code for it."""
    say: Callable[[str], None] = (
        (lambda _: None) if as_json else (lambda line: err.print(line, highlight=False))
    )
    try:
        found = run(say)
    except Exception as exc:
        if cannot_run is None or not isinstance(exc, cannot_run[0]):
            raise
        err.print(f"[red]giftwave: {exc}[/red]", highlight=False)
        raise typer.Exit(cannot_run[1]) from exc
    result = found if isinstance(found, dict) else found.as_dict()
    # The machine is shared as often as not: say how busy it was, beside every figure.
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        out.print_json(json.dumps(result))


@bench_app.command("ledger")
def bench_ledger(
    as_json: JsonFlag = False,
    seconds: Annotated[float, typer.Option(help="Length of each measured phase.", min=0.5)] = 5.0,
    repeat: Annotated[
        int, typer.Option(help="Throughput runs (the median is reported).", min=1)
    ] = 3,
    viewers: Annotated[int, typer.Option(help="Viewer accounts.", min=1)] = 10_000,
    concurrency: Annotated[int, typer.Option(help="Concurrent callers.", min=1)] = 4096,
    writer: Annotated[
        str,
        typer.Option(
            help="Where the store runs: 'process' (a child), 'thread', or 'auto' (process on"
            " SQLite, thread on PostgreSQL)."
        ),
    ] = "auto",
) -> None:
    """Gifts to one hot creator: gifts/s, latency, and the one-transaction-per-gift baseline."""
    from giftwave.bench.ledger import LedgerBenchConfig, run_ledger_bench

    settings = _settings()
    tune_runtime()
    if writer not in ("auto", "process", "thread"):
        err.print("[red]giftwave: --writer is 'auto', 'process' or 'thread'[/red]")
        raise typer.Exit(2)
    cfg = LedgerBenchConfig(
        seconds=seconds, repeat=repeat, viewers=viewers, concurrency=concurrency, writer=writer
    )
    _bench(as_json, lambda say: run_ledger_bench(settings.database_url, cfg, say))


@bench_app.command("api")
def bench_api(
    as_json: JsonFlag = False,
    seconds: MeasuredSeconds = 10.0,
    viewers: Annotated[int, typer.Option(help="Viewers sending gifts.", min=1)] = 500,
    connections: KeepAliveConnections = 64,
    server_workers: Annotated[
        int, typer.Option(help="`giftwave serve --workers` of the measured server.", min=1)
    ] = 1,
    rate: Annotated[
        float | None,
        typer.Option(help="Also time gifts sent at this fixed rate (open loop), per second."),
    ] = None,
    rate_fraction: Annotated[
        float | None,
        typer.Option(
            help="Or at this fraction of the run's own closed-loop gifts/s (0.5: half).",
            min=0.01,
            max=1.0,
        ),
    ] = None,
    baseline: Annotated[
        bool, typer.Option(help="Also load a bare FastAPI endpoint taking the same body.")
    ] = True,
    observability_baseline: Annotated[
        int,
        typer.Option(
            help="Also run a server with GIFTWAVE_OBSERVABILITY=false, in this many rounds"
            " alternating with the measured one: what request ids and metrics cost.",
            min=0,
        ),
    ] = 0,
    against: Annotated[
        Path | None,
        typer.Option(
            help="Also a server from another checkout's src directory (an earlier commit), in"
            " rounds alternating with this one: before and after, side by side in one run.",
            exists=True,
            file_okay=False,
            resolve_path=True,
        ),
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(help="Rounds the measured phase is cut in (6 with --against, else 1).", min=1),
    ] = None,
) -> None:
    """Gifts through the HTTP API of a real `giftwave serve`: gifts/s, latency, CPU per gift."""
    from giftwave.bench.api import ApiBenchConfig, run_api_bench

    settings = _settings()
    cfg = ApiBenchConfig(
        seconds=seconds,
        viewers=viewers,
        connections=connections,
        server_workers=server_workers,
        rate_per_s=rate,
        rate_fraction=rate_fraction,
        bare_baseline=baseline,
        observability_rounds=observability_baseline,
        against=None if against is None else str(against),
        rounds=rounds,
    )
    _bench(as_json, lambda say: run_api_bench(settings.database_url, cfg, say))


@bench_app.command("sharing")
def bench_sharing(
    as_json: JsonFlag = False,
    seconds: MeasuredSeconds = 8.0,
    connections: KeepAliveConnections = 64,
    rate: Annotated[
        float, typer.Option(help="Redirects/s of the open loop that times the latency.", min=1)
    ] = 5000.0,
    watermark: Annotated[
        bool, typer.Option("--watermark/--no-watermark", help="Also render a 30 s clip.")
    ] = True,
) -> None:
    """Share-link redirects on a real server beside a bare health check, the trending
    recomputation, and the watermark render: the issue's figures in one JSON object."""
    from giftwave.bench.sharing import SharingBenchConfig, run_sharing_bench

    cfg = SharingBenchConfig(
        seconds=seconds, connections=connections, rate_per_s=rate, watermark=watermark
    )
    url = _settings().database_url
    _bench(as_json, lambda say: run_sharing_bench(url, cfg, say))


@bench_app.command("fanout")
def bench_fanout(
    as_json: JsonFlag = False,
    viewers: Annotated[
        str,
        typer.Option(
            help="Viewer sockets in the room; a list (5000,10000,16000) measures a curve, each"
            " count on a fresh server."
        ),
    ] = "5000",
    gifts_per_s: Annotated[int, typer.Option(help="Gifts sent per second.", min=1)] = 1000,
    gifters: Annotated[int, typer.Option(help="Sockets the gifts come from.", min=1)] = 100,
    seconds: MeasuredSeconds = 10.0,
    baseline: Annotated[bool, typer.Option(help="Also run the per-event fan-out baseline.")] = True,
    viewers_per_process: Annotated[
        int, typer.Option(help="Viewer sockets per client process, at most.", min=1, max=18_000)
    ] = 8000,
) -> None:
    """One room, thousands of viewer sockets, gifts raining: every viewer gets every tick?"""
    from giftwave.bench.fanout import FanoutBenchConfig, run_fanout_bench

    try:
        counts = [int(part) for part in viewers.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        err.print("[red]giftwave: --viewers is a count or a list of counts: 5000,10000[/red]")
        raise typer.Exit(2)
    settings = _settings()
    cfg = FanoutBenchConfig(
        viewers=counts,
        gifts_per_s=gifts_per_s,
        gifters=gifters,
        seconds=seconds,
        baseline=baseline,
        viewers_per_process=viewers_per_process,
    )
    _bench(as_json, lambda say: run_fanout_bench(settings.database_url, cfg, say))


@bench_app.command("fanout-floor")
def bench_fanout_floor(
    as_json: JsonFlag = False,
    viewers: Annotated[int, typer.Option(help="Loopback sockets written to.", min=1)] = 3000,
    frames: Annotated[int, typer.Option(help="Frames per round and side.", min=1)] = 40,
    rounds: Annotated[int, typer.Option(help="Interleaved rounds (medians).", min=1)] = 5,
    frame_bytes: Annotated[int, typer.Option(help="Bytes of each frame's text.", min=1)] = 400,
) -> None:
    """The hub's fan-out beside a bare loop of socket writes: what Python adds per frame."""
    from giftwave.bench.fanout_floor import FanoutFloorConfig, run_fanout_floor

    cfg = FanoutFloorConfig(viewers=viewers, frames=frames, rounds=rounds, frame_bytes=frame_bytes)
    _bench(as_json, lambda say: run_fanout_floor(cfg, say))


@bench_app.command("ws-gifts")
def bench_ws_gifts(
    as_json: JsonFlag = False,
    seconds: MeasuredSeconds = 10.0,
    gifters: Annotated[int, typer.Option(help="Viewer sockets sending gifts.", min=1)] = 1000,
    window: Annotated[int, typer.Option(help="Gifts in flight per socket.", min=1)] = 8,
    baseline: Annotated[bool, typer.Option(help="Also send gifts over REST.")] = True,
    closed_loop: Annotated[
        bool, typer.Option(help="Measure the closed loop (the most gifts/s answered).")
    ] = True,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Also offer gifts at this steady rate per second (open loop), each ack timed"
            " from when its gift was due.",
            min=1,
        ),
    ] = None,
    find_rate: Annotated[
        bool,
        typer.Option(
            "--find-rate", help="Search the highest steady rate whose ack p99 is <= 50 ms."
        ),
    ] = False,
    find_rate_start: Annotated[
        float, typer.Option(help="The search's first rate, gifts/s.", min=1)
    ] = 1000.0,
    step_seconds: Annotated[
        float, typer.Option(help="Length of each measured step of the search.", min=0.5)
    ] = 3.0,
) -> None:
    """Gifts as WebSocket commands into one process, beside the same gifts over REST."""
    from giftwave.bench.ws_gifts import WsGiftsBenchConfig, run_ws_gifts_bench

    settings = _settings()
    cfg = WsGiftsBenchConfig(
        seconds=seconds,
        gifters=gifters,
        window=window,
        baseline=baseline,
        closed_loop=closed_loop,
        rate_per_s=rate,
        find_rate=find_rate,
        find_rate_start_per_s=find_rate_start,
        step_seconds=step_seconds,
    )
    _bench(as_json, lambda say: run_ws_gifts_bench(settings.database_url, cfg, say))


@bench_app.command("cluster")
def bench_cluster(
    as_json: JsonFlag = False,
    nodes: Annotated[int, typer.Option(help="giftwave serve nodes.", min=1, max=16)] = 2,
    viewers: Annotated[int, typer.Option(help="Viewer sockets through HAProxy.", min=1)] = 1000,
    gifters: Annotated[int, typer.Option(help="WebSocket gifters per node.", min=1)] = 50,
    window: Annotated[int, typer.Option(help="Gifts in flight per gifter.", min=1)] = 4,
    connections: Annotated[int, typer.Option(help="REST connections per node.", min=1)] = 8,
    seconds: MeasuredSeconds = 10.0,
    warmup: Annotated[float, typer.Option(help="Warm-up before it.", min=0.5)] = 3.0,
    gift_nodes: Annotated[
        int, typer.Option(help="Gifts through the first K nodes only (0: every node).", min=0)
    ] = 0,
) -> None:
    """N nodes behind HAProxy on PostgreSQL + Redis: gifts/s, cross-node latency, CPU/gift."""
    from giftwave.bench.cluster import ClusterBenchConfig, run_cluster_bench

    settings = _settings()
    cfg = ClusterBenchConfig(
        nodes=nodes,
        viewers=viewers,
        ws_gifters_per_node=gifters,
        window=window,
        rest_connections_per_node=connections,
        seconds=seconds,
        warmup_seconds=warmup,
        gift_nodes=min(gift_nodes, nodes),
    )
    _bench(
        as_json,
        lambda say: run_cluster_bench(settings.database_url, cfg, say),
        # No PostgreSQL, no HAProxy or Redis, a node that did not start.
        cannot_run=(RuntimeError, 1),
    )


@bench_app.command("trending")
def bench_trending(
    as_json: JsonFlag = False,
    repeat: Annotated[int, typer.Option(help="Runs (the median is reported).", min=1)] = 3,
) -> None:
    """100,000 engagement events through the trending ranking, beside a full rescan per read."""
    from giftwave.bench.trending import run_trending_bench

    _bench(as_json, lambda say: run_trending_bench(say, repeat))


@bench_app.command("analytics")
def bench_analytics(
    as_json: JsonFlag = False,
    transfers: Annotated[
        int, typer.Option(help="Transfers to generate (gifts are two each).", min=1000)
    ] = 10_000_000,
    viewers: Annotated[int, typer.Option(help="Viewers in the simulated day.", min=1)] = 100_000,
) -> None:
    """Analytics queries over N transfers (PostgreSQL), and one simulated day of V viewers."""
    from giftwave.bench.analytics import run_analytics_bench

    settings = _settings()
    _bench(as_json, lambda say: run_analytics_bench(settings.database_url, transfers, viewers, say))


@app.command()
def simulate(
    config: Annotated[str, typer.Option("--config", help="The scenario (TOML).")],
    compare: Annotated[
        str | None, typer.Option("--compare", help="A second scenario, side by side.")
    ] = None,
    report: Annotated[str, typer.Option("--report", help="Where to write the HTML report.")] = (
        "simulation-report.html"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Run a simulated population through the real economy code (a scratch database per
    scenario) and print the health figures; write charts to an HTML report."""
    from pathlib import Path

    from rich.progress import Progress

    from giftwave.simulate.report import differences, render_report
    from giftwave.simulate.run import simulate as run_simulation
    from giftwave.simulate.scenario import ScenarioError, load_scenario

    try:
        scenarios = [load_scenario(Path(p)) for p in (config, compare) if p is not None]
    except ScenarioError as exc:
        err.print(f"[red]giftwave: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    results = []
    with Progress(console=err, transient=True) as progress:
        for scenario in scenarios:
            task = progress.add_task(f"simulating {scenario.name}", total=scenario.days)

            def advance(done: int, _days: int, task: Any = task) -> None:
                progress.update(task, completed=done)

            results.append(run_simulation(scenario, advance))
    Path(report).write_text(render_report(results), encoding="utf-8")
    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results]) + "\n")
    else:
        for result in results:
            _print_figures(result)
        if len(results) == 2:
            out.print("[bold]What changed[/bold]")
            for line in differences(results[0], results[1]) or ["no figure moved by 5% or more"]:
                out.print(f"  {line}", highlight=False)
        out.print(f"report: {report}")
    if not all(r.ledger_clean for r in results):
        err.print("[red]giftwave: ledger verify found problems in a simulated run[/red]")
        raise typer.Exit(1)


def _print_figures(result: Any) -> None:
    from giftwave.money import format_money
    from giftwave.simulate.report import COMPARED, risk_lines

    f = result.figures
    out.print(
        f"[bold]{result.scenario.name}[/bold] (ledger verify: "
        f"{'clean' if result.ledger_clean else 'PROBLEMS'}, {result.transfers:,} transfers)"
    )
    for key, label, share in COMPARED:
        value = getattr(f, key)
        out.print(
            f"  {label:<40} {value:.1%}" if share else f"  {label:<40} {value:,}", highlight=False
        )
    out.print("  [bold]risk rules on the simulated truth[/bold]")
    for line in risk_lines(result.risk):
        out.print(f"  {line}", highlight=False)
    for p in f.payouts:
        out.print(
            f"  {'payouts in ' + p.currency + ' (' + format(p.payouts, ',') + ')':<40} "
            f"gross {format_money(p.gross_minor, p.currency, 'en_US')}, "
            f"fees {format_money(p.fees_minor, p.currency, 'en_US')}, "
            f"net {format_money(p.net_minor, p.currency, 'en_US')}",
            highlight=False,
        )


@bench_app.command("watermark")
def bench_watermark(
    as_json: JsonFlag = False,
    repeat: Annotated[int, typer.Option(help="Renders (the median is reported).", min=1)] = 1,
) -> None:
    """A 30 s 720p clip rendered as a watermarked download: how much faster than real time."""
    from giftwave.bench.watermark import run_watermark_bench
    from giftwave.clips.media import FfmpegMissing

    _bench(as_json, lambda say: run_watermark_bench(say, repeat), cannot_run=(FfmpegMissing, 2))


def _refuse_unknown_variables() -> None:
    """Exit 2 naming each ``GIFTWAVE_*`` variable giftwave does not read."""
    from giftwave.config_check import environment_findings

    try:
        unknown = environment_findings(os.environ)
    except ConfigError as exc:
        err.print(f"[red]giftwave: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    for finding in unknown:
        err.print(f"[red]giftwave: {finding.line()}[/red]", highlight=False, soft_wrap=True)
    if unknown:
        err.print("[red]giftwave: refusing to start (`giftwave config check` lists all)[/red]")
        raise typer.Exit(2)


@push_app.command("keys")
def push_keys() -> None:
    """Make a VAPID key pair: the private key for GIFTWAVE_VAPID_PRIVATE_KEY (a secret: keep
    it out of logs and version control) and the public key pages subscribe with."""
    from giftwave.notify.vapid import VapidKey, generate_private_key

    private = generate_private_key()
    public = VapidKey(private, subject="mailto:unused@example.org").public_b64
    out.print(f"GIFTWAVE_VAPID_PRIVATE_KEY={private}", highlight=False, soft_wrap=True)
    out.print(f"# public key (served at /v1/push/vapid-key): {public}", highlight=False)


@config_app.command("check")
def config_check() -> None:
    """Print the effective settings (secrets masked); exit 1 on an unknown GIFTWAVE_*
    variable or an unsafe combination, 2 on a value giftwave cannot run with."""
    from giftwave.config_check import (
        effective_settings,
        environment_findings,
        unsafe_combinations,
    )

    settings = _settings()
    for variable, shown in effective_settings(settings):
        out.print(f"{variable}={shown}", highlight=False, markup=False, soft_wrap=True)
    findings = environment_findings(os.environ) + unsafe_combinations(settings)
    for finding in findings:
        err.print(finding.line(), highlight=False, markup=False, soft_wrap=True)
    errors = sum(1 for f in findings if f.level == "error")
    warnings = len(findings) - errors
    err.print(f"config check: {errors} error(s), {warnings} warning(s)", highlight=False)
    if errors:
        raise typer.Exit(1)


RECONCILE_DAYS = 30  # the window when --since is not given


class Provider(enum.StrEnum):
    STRIPE = "stripe"
    SANDBOX = "sandbox"


def _since_us(text: str | None) -> int:
    """--since: a UTC date (YYYY-MM-DD) or an ISO 8601 time with its offset; exit 2 if not."""
    from datetime import UTC, date, datetime, timedelta

    if text is None:
        start = datetime.now(UTC) - timedelta(days=RECONCILE_DAYS)
        return int(start.timestamp()) * 1_000_000
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("no UTC offset")
        return int(moment.timestamp() * 1_000_000)
    except (ValueError, OverflowError):
        err.print(
            f"giftwave: --since takes a date (2026-12-01) or a time with its offset "
            f"(2026-12-01T09:30:00+00:00), not {text[:40]!r}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(2) from None


def _mismatch_line(m: dict[str, Any]) -> str:
    def side(record: dict[str, Any] | None) -> str:
        if record is None:
            return "none"
        return f"{record['amount_minor']} {record['currency']} {record['state']}"

    return (
        f"MISMATCH {m['mismatch']:<19} {m['kind']:<7} {m['reference']}: "
        f"ledger {side(m['ledger'])}, provider {side(m['provider'])}"
    )


@app.command()
def reconcile(
    provider: Annotated[
        Provider | None,
        typer.Option(
            help="Whose records to compare with the ledger (default: GIFTWAVE_PAYMENT_PROVIDER)."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help=f"From this UTC date (YYYY-MM-DD) or ISO time on (default: {RECONCILE_DAYS} "
            "days ago)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare the ledger's top-ups, refunds, disputes and payouts with the payment provider's
    records and list every mismatch. Exit 0 clean, 1 mismatches, 2 usage error or provider or
    database unreachable. The run is kept for the admin console (docs/operations.md)."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from giftwave.db.engine import SchemaOutOfDate, check_schema, make_engine
    from giftwave.db.urls import parse_database_url
    from giftwave.economy.reconcile import Mismatch
    from giftwave.economy.reconcile_runs import Run, mismatch_out
    from giftwave.economy.reconcile_runs import reconcile as run_reconcile
    from giftwave.payments.base import ProviderUnavailable
    from giftwave.payments.records import RecordSource

    settings = _settings()
    since_us = _since_us(since)
    name = provider or settings.payment_provider
    db = make_engine(parse_database_url(settings.database_url))
    source: RecordSource
    close: Callable[[], Awaitable[None]] | None = None
    if name == Provider.STRIPE:
        from giftwave.payments.stripe_records import CONNECT_LISTERS, LISTERS, StripeRecords

        if settings.stripe_api_key is None:
            err.print("giftwave: reconcile --provider stripe needs GIFTWAVE_STRIPE_API_KEY")
            raise typer.Exit(2)
        source = stripe = StripeRecords(
            api_key=settings.stripe_api_key.get_secret_value(),
            api_base=settings.stripe_api_base,
            # Payouts through Connect are Stripe's transfers; without it none are Stripe's.
            listers=CONNECT_LISTERS if settings.payout_provider == "stripe" else LISTERS,
        )
        close = stripe.close
    else:
        from giftwave.payments.sandbox_records import SandboxRecords

        source = SandboxRecords(db)

    async def run() -> tuple[Run, list[Mismatch]]:
        try:
            return await run_reconcile(db, source, since_us)
        finally:
            if close is not None:
                await close()

    try:
        check_schema(db)
        report, mismatches = asyncio.run(run())
    except (SchemaOutOfDate, ProviderUnavailable, SQLAlchemyError) as exc:
        detail = exc.detail if isinstance(exc, ProviderUnavailable) else str(exc).split("\n")[0]
        err.print(f"giftwave: reconcile: {detail}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    # The stored run keeps the first mismatches; the command prints every one.
    shown = report.as_dict() | {
        "mismatches": [mismatch_out(m) for m in mismatches],
        "truncated": False,
    }
    if as_json:
        out.print_json(json.dumps(shown))
    else:
        for m in shown["mismatches"]:
            out.print(_mismatch_line(m), highlight=False, markup=False, soft_wrap=True)
        verdict = "clean" if report.clean else f"{report.mismatch_count} mismatch(es)"
        out.print(
            f"reconcile {report.provider}: {verdict} ({report.ledger_records} ledger records, "
            f"{report.provider_records} provider records)",
            highlight=False,
            soft_wrap=True,
        )
    if not report.clean:
        raise typer.Exit(1)


@app.command()
def backup(
    path: Annotated[str, typer.Argument(help="The copy to write (must not exist yet).")],
) -> None:
    """Copy the SQLite database to PATH while the server runs: one consistent snapshot
    (SQLite's online backup). PostgreSQL: use pg_dump (docs/operations.md)."""
    from pathlib import Path

    from giftwave.db.backup import BackupRefused, backup_sqlite
    from giftwave.db.urls import parse_database_url

    settings = _settings()
    try:
        copied = backup_sqlite(parse_database_url(settings.database_url), Path(path))
    except BackupRefused as exc:
        err.print(f"[red]giftwave: {exc}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    out.print(
        f"backup: {copied.pages} pages ({copied.bytes} bytes) written to {path}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def chaos(
    seconds: Annotated[float, typer.Option(help="Length of the storm.", min=10)] = 40.0,
    as_json: JsonFlag = False,
    nodes: Annotated[int, typer.Option(help="`giftwave serve` nodes.", min=2, max=8)] = 2,
    viewers: Annotated[int, typer.Option(help="Viewers sending gifts.", min=2, max=200)] = 6,
    restart_postgres: Annotated[
        bool,
        typer.Option(
            "--restart-postgres/--no-restart-postgres",
            help="Also restart the local PostgreSQL mid-storm (everyone using it notices).",
        ),
    ] = False,
) -> None:
    """A fault campaign on a scratch copy of GIFTWAVE_DATABASE_URL: nodes killed and paused,
    Redis restarted empty, then a proof from the database that nothing was lost (exit 1 if it
    was). docs/reliability.md."""
    from giftwave.chaos.campaign import Plan, run_campaign

    settings = _settings()
    plan = Plan(seconds=seconds, nodes=nodes, viewers=viewers, restart_postgres=restart_postgres)
    result = run_campaign(settings.database_url, plan)
    if as_json:
        out.print_json(json.dumps(result))
    else:
        for key, value in result.items():
            out.print(f"{key}: {value}", highlight=False, markup=False, soft_wrap=True)
    if not result["ok"]:
        raise typer.Exit(1)


def main() -> None:
    app()
