#!/usr/bin/env python3
"""The capacity model of docs/scaling.md: from measured per-component costs (a TOML file,
scripts/capacity_inputs.toml by default) to what a platform needs for a scenario.

    python3 scripts/capacity_model.py                 # the tables of docs/scaling.md
    python3 scripts/capacity_model.py --json          # the same figures as one JSON object
    python3 scripts/capacity_model.py --inputs my.toml

Pure Python (standard library only), so it runs anywhere; no figure is typed into the docs by
hand: tests/unit/test_capacity_model.py checks that docs/scaling.md holds exactly the tables
this script prints from the committed inputs.

The cost model (each term measured, docs/scaling.md says where):

- a node spends ``intake`` CPU on each gift it receives (HTTP or socket, auth, checks, the
  ledger round trip, the answer) and ``apply`` CPU on each gift of a room it follows, whoever
  received it (the room's state, combos, the tick); ``bench cluster --nodes 2 --gift-nodes 1``
  gives both in one run: node1 receives every gift, node2 only follows the room;
- Redis spends about as much on a gift's XADD as on each node's read of it;
- a core writes ``frame_writes_per_core_s`` frames to sockets (``bench fanout``), each viewer
  getting at most ``tick_hz`` frames a second however many gifts the room gets;
- one ledger writer (one chain head) commits ``ledger_gifts_per_s`` (``bench ledger``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_INPUTS = Path(__file__).with_name("capacity_inputs.toml")


@dataclass(frozen=True)
class Costs:
    intake_cpu_ms: float  # per gift, on the node that received it
    apply_cpu_ms: float  # per gift, on every node following its room
    redis_xadd_cpu_ms: float  # per gift published
    redis_read_cpu_ms: float  # per gift, per node reading the room's stream
    postgres_cpu_ms: float  # per gift, the database's backends
    ledger_gifts_per_s: float  # one writer, one chain head
    frame_writes_per_core_s: float
    tick_hz: float
    memory_kb_per_viewer: float
    utilisation: float  # the share of a core or writer a plan may use (headroom for peaks)
    cores_per_node: int
    memory_gb_per_node: float


def costs_from(inputs: dict[str, Any]) -> Costs:
    """Per-gift costs from the follower run (``bench cluster --nodes 2 --gift-nodes 1``): both
    nodes follow the room and hold half the viewers each; node1 also receives every gift. So
    node1 - node2 is the intake; node2, less the frames it wrote, is the apply."""
    run = inputs["follower_run"]
    fanout = inputs["fanout"]
    gifts = run["gifts_per_s"] * run["seconds"]
    frames_cpu_s = run["node2_frames_per_s"] * run["seconds"] / fanout["frame_writes_per_core_s"]
    intake_ms = (run["node1_cpu_s"] - run["node2_cpu_s"]) * 1000 / gifts
    apply_ms = (run["node2_cpu_s"] - frames_cpu_s) * 1000 / gifts
    assert intake_ms > 0, "node1 must cost more than node2 in the follower run: re-measure"
    assert apply_ms > 0, "node2 must cost more than its frames in the follower run: re-measure"
    # Redis did one XADD and two reads (two following nodes) a gift; they are not told apart
    # within the noise, so each counts as a third of what a gift cost there.
    redis_op_ms = run["redis_cpu_s"] * 1000 / gifts / 3
    plan = inputs["plan"]
    return Costs(
        intake_cpu_ms=intake_ms,
        apply_cpu_ms=apply_ms,
        redis_xadd_cpu_ms=redis_op_ms,
        redis_read_cpu_ms=redis_op_ms,
        postgres_cpu_ms=run["postgres_cpu_s"] * 1000 / gifts,
        ledger_gifts_per_s=inputs["ledger"]["gifts_per_s_per_writer"],
        frame_writes_per_core_s=fanout["frame_writes_per_core_s"],
        tick_hz=fanout["tick_hz"],
        memory_kb_per_viewer=fanout["memory_kb_per_viewer"],
        utilisation=plan["utilisation"],
        cores_per_node=plan["cores_per_node"],
        memory_gb_per_node=plan["memory_gb_per_node"],
    )


@dataclass(frozen=True)
class Row:
    part: str
    load: str
    per_unit: str  # what one unit (core, writer, node) does at the planned utilisation
    units: float  # cores, or writers for the ledger
    note: str


def _cores(cpu_ms_per_s: float, costs: Costs) -> float:
    return cpu_ms_per_s / 1000 / costs.utilisation


def single_room(costs: Costs, scenario: dict[str, Any], *, relayed: bool) -> list[Row]:
    """One room: every gift reaches every node that holds some of its viewers."""
    gifts, viewers = float(scenario["gifts_per_s"]), float(scenario["viewers"])
    frames_per_s = viewers * min(costs.tick_hz, gifts)
    fanout_cores = frames_per_s / (costs.frame_writes_per_core_s * costs.utilisation)
    edge_nodes = max(
        math.ceil(fanout_cores / costs.cores_per_node),
        math.ceil(viewers * costs.memory_kb_per_viewer / 1e6 / costs.memory_gb_per_node),
    )
    # Naive: every edge node follows the room's event stream and applies every gift.
    # Relayed: one room process applies them and publishes one frame per tick to the edges.
    followers = 1 if relayed else edge_nodes
    apply_cores = _cores(gifts * costs.apply_cpu_ms * followers, costs)
    reads_per_s = gifts * followers + (costs.tick_hz * edge_nodes if relayed else 0)
    redis_cores = _cores(
        gifts * costs.redis_xadd_cpu_ms + reads_per_s * costs.redis_read_cpu_ms, costs
    )
    return [
        Row("gift intake (nodes)", f"{gifts:,.0f} gifts/s", _per_core(costs.intake_cpu_ms, costs),
            _cores(gifts * costs.intake_cpu_ms, costs), "spread over any nodes"),
        Row("ledger (one writer)", f"{gifts:,.0f} gifts/s",
            f"{costs.ledger_gifts_per_s * costs.utilisation:,.0f} gifts/s",
            gifts / (costs.ledger_gifts_per_s * costs.utilisation), "writers; one hot creator"),
        Row("room state (apply)", f"{gifts:,.0f} gifts/s x {followers:,} follower(s)",
            _per_core(costs.apply_cpu_ms, costs), apply_cores,
            "one room process" if relayed else "on every edge node"),
        Row("Redis, the room's stream key", f"{reads_per_s:,.0f} entries read/s",
            f"{1000 * costs.utilisation / costs.redis_read_cpu_ms:,.0f} reads/s", redis_cores,
            "one key lives on one Redis core"),
        Row("fan-out (socket writes)", f"{frames_per_s:,.0f} frames/s",
            f"{costs.frame_writes_per_core_s * costs.utilisation:,.0f} frames/s", fanout_cores,
            f"{edge_nodes:,} edge nodes of {costs.cores_per_node} cores"),
        Row("viewer memory", f"{viewers:,.0f} sockets",
            f"{costs.memory_gb_per_node:,.0f} GB a node",
            viewers * costs.memory_kb_per_viewer / 1e6 / costs.memory_gb_per_node,
            f"{viewers * costs.memory_kb_per_viewer / 1e6:,.1f} GB in all (nodes)"),
    ]  # fmt: skip


def platform(costs: Costs, scenario: dict[str, Any]) -> list[Row]:
    """Many rooms, each followed by the few nodes its viewers are on (room affinity)."""
    gifts, rooms = float(scenario["gifts_per_s"]), float(scenario["rooms"])
    viewers = float(scenario["viewers"])
    followers = float(scenario["nodes_per_room"])
    per_room = gifts / rooms
    frames_per_s = viewers * min(costs.tick_hz, per_room)
    writers = gifts / (costs.ledger_gifts_per_s * costs.utilisation)
    return [
        Row("gift intake (nodes)", f"{gifts:,.0f} gifts/s", _per_core(costs.intake_cpu_ms, costs),
            _cores(gifts * costs.intake_cpu_ms, costs), "stateless: any node"),
        Row("ledger", f"{gifts:,.0f} gifts/s",
            f"{costs.ledger_gifts_per_s * costs.utilisation:,.0f} gifts/s", writers,
            f"writers: {math.ceil(writers)} shards at least, one chain head each"),
        Row("PostgreSQL backends", f"{gifts:,.0f} gifts/s", _per_core(costs.postgres_cpu_ms, costs),
            _cores(gifts * costs.postgres_cpu_ms, costs), "split over the shards' databases"),
        Row("room state (apply)", f"{gifts:,.0f} gifts/s x {followers:g} nodes a room",
            _per_core(costs.apply_cpu_ms, costs),
            _cores(gifts * followers * costs.apply_cpu_ms, costs), f"{per_room:g} gifts/s a room"),
        Row("Redis streams", f"{gifts:,.0f} xadd/s, {gifts * followers:,.0f} reads/s",
            f"{1000 * costs.utilisation / (costs.redis_xadd_cpu_ms + costs.redis_read_cpu_ms):,.0f}"
            " gifts/s", _cores(gifts * (costs.redis_xadd_cpu_ms + followers
                                        * costs.redis_read_cpu_ms), costs),
            "Redis Cluster: rooms hashed over shards"),
        Row("fan-out (socket writes)", f"{frames_per_s:,.0f} frames/s",
            f"{costs.frame_writes_per_core_s * costs.utilisation:,.0f} frames/s",
            frames_per_s / (costs.frame_writes_per_core_s * costs.utilisation),
            f"{viewers:,.0f} viewers"),
        Row("viewer memory", f"{viewers:,.0f} sockets",
            f"{costs.memory_gb_per_node:,.0f} GB a node",
            viewers * costs.memory_kb_per_viewer / 1e6 / costs.memory_gb_per_node,
            f"{viewers * costs.memory_kb_per_viewer / 1e6:,.0f} GB in all (nodes)"),
    ]  # fmt: skip


def _per_core(cpu_ms: float, costs: Costs) -> str:
    return f"{1000 * costs.utilisation / cpu_ms:,.0f} gifts/s"


def nodes_for(rows: list[Row], costs: Costs) -> int:
    """Application nodes: the cores of intake, apply and fan-out, or the memory, whichever is
    more (the ledger, PostgreSQL and Redis are counted apart: they are other machines)."""
    cores = sum(r.units for r in rows if r.part.split(" (")[0] in _NODE_PARTS)
    memory = sum(r.units for r in rows if r.part == "viewer memory")
    return max(math.ceil(cores / costs.cores_per_node), math.ceil(memory))


_NODE_PARTS = {"gift intake", "room state", "fan-out"}


def table(rows: list[Row]) -> str:
    lines = ["| part | load | one unit does | units needed | note |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.part} | {r.load} | {r.per_unit} | {r.units:,.1f} | {r.note} |")
    return "\n".join(lines)


def model(inputs: dict[str, Any]) -> dict[str, Any]:
    costs = costs_from(inputs)
    room, plat = inputs["scenario"]["room"], inputs["scenario"]["platform"]
    naive = single_room(costs, room, relayed=False)
    relayed = single_room(costs, room, relayed=True)
    wide = platform(costs, plat)
    return {
        "costs": costs,
        "tables": {"room_naive": naive, "room_relayed": relayed, "platform": wide},
        "nodes": {
            "room_naive": nodes_for(naive, costs),
            "room_relayed": nodes_for(relayed, costs),
            "platform": nodes_for(wide, costs),
        },
    }


def render(result: dict[str, Any]) -> str:
    c: Costs = result["costs"]
    out = [
        "Per-gift costs split from the inputs:",
        "",
        "| cost | value |",
        "|---|---|",
        f"| intake, CPU ms a gift on the node that received it | {c.intake_cpu_ms:.3f} |",
        f"| apply, CPU ms a gift on each node following its room | {c.apply_cpu_ms:.3f} |",
        f"| Redis XADD, CPU ms a gift | {c.redis_xadd_cpu_ms:.4f} |",
        f"| Redis read, CPU ms a gift and reading node | {c.redis_read_cpu_ms:.4f} |",
        f"| PostgreSQL backends, CPU ms a gift | {c.postgres_cpu_ms:.3f} |",
    ]
    titles = {
        "room_naive": "(a) one room, as built today (every edge node follows the room)",
        "room_relayed": "(a) one room, relayed (one room process, frames to the edges)",
        "platform": "(b) the platform peak",
    }
    for key, title in titles.items():
        out += ["", f"{title}: **{result['nodes'][key]:,} application nodes**", ""]
        out.append(table(result["tables"][key]))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=Path, default=DEFAULT_INPUTS)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    result = model(tomllib.loads(args.inputs.read_text()))
    if args.json:
        plain = {
            "costs": result["costs"].__dict__,
            "nodes": result["nodes"],
            "tables": {k: [r.__dict__ for r in v] for k, v in result["tables"].items()},
        }
        sys.stdout.write(json.dumps(plain) + "\n")
    else:
        sys.stdout.write(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
