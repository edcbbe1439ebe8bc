"""One or two simulation runs as a self-contained HTML report: figures, charts, differences."""

from __future__ import annotations

from html import escape
from typing import Final

from giftwave.simulate.fraud import RiskReport
from giftwave.simulate.run import SimulationResult
from giftwave.web import charts

# (figure, label, is a share): what the report compares, in this order.
COMPARED: Final = (
    ("coins_sold", "Coins sold", False),
    ("coins_spent", "Coins spent on gifts", False),
    ("coins_outstanding", "Coins outstanding (liability)", False),
    ("diamonds_earned", "Diamonds earned", False),
    ("diamonds_paid_out", "Diamonds paid out", False),
    ("gifters", "Gifters", False),
    ("top1pct_share", "Share of the top 1% of gifters", True),
    ("gini", "Gini coefficient of spending", True),
    ("creator_median_diamonds", "Median creator diamonds", False),
    ("creator_p90_diamonds", "90th percentile creator diamonds", False),
    ("creators_above_payout_min_share", "Creators above the payout minimum", True),
    ("refund_rate", "Refunds per top-up", True),
    ("chargeback_rate", "Chargebacks per top-up", True),
)
NOTABLE_CHANGE: Final = 0.05  # a relative difference called out in the summary

STYLE: Final = """
:root { --bg:#101018; --surface:#1b1b27; --line:#34344a; --fg:#f4f4f8; --muted:#b9b9cc;
  --accent:#d81b55; --accent-soft:#ff6f97; --gold:#ffcb52; --ok:#52d49a; --radius:14px; }
body { margin:0 auto; max-width:72rem; padding:1rem; background:var(--bg); color:var(--fg);
  font:16px/1.5 system-ui, sans-serif; }
table { border-collapse:collapse; width:100%; }
th, td { padding:.3rem .5rem; border-block-end:1px solid var(--line); text-align:start; }
td.num { font-variant-numeric:tabular-nums; text-align:end; }
.up { color:var(--ok); } .down { color:var(--accent-soft); } .muted { color:var(--muted); }
.cols { display:grid; grid-template-columns:repeat(auto-fit, minmax(min(100%, 30rem), 1fr));
  gap:1rem; }
figure.chart { margin:0 0 1rem; background:var(--surface); border:1px solid var(--line);
  border-radius:var(--radius); padding:.8rem; }
figure.chart svg { inline-size:100%; block-size:auto; }
.axis { stroke:var(--muted); } .grid { stroke:var(--line); }
.tick, .legend { fill:var(--muted); font-size:11px; } .bar { fill:var(--accent-soft); }
.line { fill:none; stroke-width:2.5; }
.line-0 { stroke:var(--accent-soft); fill:var(--accent-soft); }
.line-1 { stroke:var(--gold); fill:var(--gold); } polyline.line-0, polyline.line-1 { fill:none; }
.equality { stroke:var(--muted); stroke-dasharray:4 4; }
.lorenz-gap { fill:var(--accent); opacity:.18; }
summary { cursor:pointer; color:var(--accent-soft); }
"""


def _value(result: SimulationResult, key: str) -> float:
    value = getattr(result.figures, key)
    assert isinstance(value, int | float)
    return float(value)


def _show(value: float, share: bool) -> str:
    return f"{value:.1%}" if share else f"{value:,.0f}"


def differences(base: SimulationResult, other: SimulationResult) -> list[str]:
    """Sentences for the figures that moved by more than 5% (relative), largest first."""
    moved = []
    for key, label, share in COMPARED:
        a, b = _value(base, key), _value(other, key)
        if a == b:
            continue
        change = (b - a) / abs(a) if a else float("inf")
        if abs(change) >= NOTABLE_CHANGE:
            moved.append(
                (
                    abs(change),
                    f"{label}: {_show(a, share)} → {_show(b, share)}"
                    + ("" if a == 0 else f" ({change:+.0%})"),
                )
            )
    return [text for _, text in sorted(moved, key=lambda m: -m[0])]


def _run_section(result: SimulationResult) -> str:
    f = result.figures
    days = [d.day for d in f.days]
    parts = [
        f"<h2>{escape(result.scenario.name)}</h2>",
        "<p class=muted>"
        f"seed {result.scenario.seed}, {result.scenario.days} days, "
        f"{result.scenario.population.viewers:,} viewers, "
        f"{result.scenario.population.creators:,} creators, "
        f"{result.scenario.economy.diamonds_per_coin} diamonds per coin; "
        f"{result.transfers:,} transfers; ledger verify: "
        f"{'clean' if result.ledger_clean else 'PROBLEMS'}</p>",
        charts.line_chart(
            "Coins per day",
            days,
            [("Sold", [d.coins_sold for d in f.days]), ("Spent", [d.coins_spent for d in f.days])],
            empty="No coins sold or spent.",
        ),
        charts.lorenz_chart(
            "Lorenz curve of spending",
            f.lorenz,
            x_name="of gifters",
            y_name="of coins",
            empty="No gifts.",
            summary=f"Top 1% of gifters spent {f.top1pct_share:.1%}; Gini {f.gini:.3f}",
        ),
        charts.bar_chart(
            "Creators by total earnings (USD)",
            [b[0] for b in f.income_bands],
            [b[1] for b in f.income_bands],
            value_name="Creators",
            empty="No creator earned.",
        ),
        _risk_table(result.risk),
    ]
    return "<section>" + "".join(str(p) for p in parts) + "</section>"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def risk_lines(risk: RiskReport) -> list[str]:
    """The risk rules on the simulator's truth, as text lines (the CLI and docs/risk.md)."""
    lines = [
        f"rings caught {risk.rings_caught}/{risk.rings}, card testers caught "
        f"{risk.card_testers_caught}/{risk.card_testers}, honest creators flagged "
        f"{risk.honest_creators_flagged}/{risk.honest_creators}",
        f"{'rule':<20} {'flagged':>8} {'fraud':>6} {'targets':>8} {'caught':>7} "
        f"{'precision':>10} {'recall':>8}",
    ]
    lines += [
        f"{r.rule:<20} {r.flagged:>8} {r.true_positives:>6} {r.targets:>8} {r.caught:>7} "
        f"{_share(r.precision):>10} {_share(r.recall):>8}"
        + ("  (evidence only: the users it named)" if r.evidence_only else "")
        for r in risk.rules
    ]
    return lines


def _risk_table(risk: RiskReport) -> str:
    rows = "".join(
        f"<tr><th scope=row>{escape(r.rule)}{' (evidence only)' if r.evidence_only else ''}"
        f"</th><td class=num>{r.flagged}</td>"
        f"<td class=num>{r.true_positives}</td><td class=num>{r.targets}</td>"
        f"<td class=num>{r.caught}</td><td class=num>{_share(r.precision)}</td>"
        f"<td class=num>{_share(r.recall)}</td></tr>"
        for r in risk.rules
    )
    return (
        "<h3>Risk rules on the simulated truth</h3>"
        f"<p class=muted>Rings caught {risk.rings_caught}/{risk.rings}; card testers caught "
        f"{risk.card_testers_caught}/{risk.card_testers}; honest creators flagged "
        f"{risk.honest_creators_flagged}/{risk.honest_creators}.</p>"
        "<table class=risk><thead><tr><th>Rule</th><th>Flagged users</th><th>Fraudulent</th>"
        "<th>Targets</th><th>Caught</th><th>Precision</th><th>Recall</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def render_report(results: list[SimulationResult]) -> str:
    assert 1 <= len(results) <= 2
    head = "".join(f"<th scope=col>{escape(r.scenario.name)}</th>" for r in results)
    rows = "".join(
        f"<tr><th scope=row>{escape(label)}</th>"
        + "".join(f"<td class=num>{_show(_value(r, key), share)}</td>" for r in results)
        + "</tr>"
        for key, label, share in COMPARED
    )
    diff = ""
    if len(results) == 2:
        moved = differences(results[0], results[1])
        items = (
            "".join(f"<li>{escape(m)}</li>" for m in moved)
            or "<li>No figure moved by 5% or more.</li>"
        )
        diff = f"<h2>What changed</h2><ul id=differences>{items}</ul>"
    return (
        "<!doctype html><html lang=en dir=ltr><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>giftwave simulation</title><style>{STYLE}</style></head><body>"
        "<h1>giftwave economy simulation</h1>"
        f"{diff}<h2>Figures</h2><table><thead><tr><th></th>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<div class=cols>{''.join(_run_section(r) for r in results)}</div>"
        "</body></html>"
    )
