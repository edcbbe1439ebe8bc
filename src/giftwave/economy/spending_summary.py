"""A viewer's month as plain text, ready to be the body of an e-mail: totals in coins and
money, last month beside it, the creators supported most and the busiest days. Pure: the
figures come from ``Spending.report``; no database, no web."""

from __future__ import annotations

from typing import Final

from giftwave.economy.spending import MonthSpend, SpendingReport
from giftwave.money import format_money

SUMMARY_CREATORS: Final = 5
SUMMARY_DAYS: Final = 3


def summary_text(handle: str, report: SpendingReport) -> str:
    """The summary, lines under 80 characters, ending in a newline."""
    this, last = report.this_month, report.last_month
    lines = [
        f"Your spending on giftwave, {this.month} (so far)",
        "",
        f"This month: {_amount(report, this.coins)}",
        f"Last month ({last.month}): {_amount(report, last.coins)}",
    ]
    if report.average_month_coins:
        lines.append(f"Your average month: {_amount(report, report.average_month_coins)}")
    lines += ["", "Creators you supported most this month:"]
    lines += _creators(report, this) or ["  (none)"]
    busiest = sorted((d for d in this.per_day if d[1]), key=lambda d: (-d[1], d[0]))
    lines += ["", "Your busiest days:"]
    lines += [f"  {day}  {_amount(report, coins)}" for day, coins in busiest[:SUMMARY_DAYS]] or [
        "  (none)"
    ]
    lines += [
        "",
        "You can set daily, weekly and monthly limits, or take a break, on your spending",
        "page. Lowering a limit works at once; raising one waits 24 hours.",
    ]
    return "\n".join(lines) + "\n"


def _creators(report: SpendingReport, month: MonthSpend) -> list[str]:
    return [
        f"  @{c.handle or c.creator_id}  {_amount(report, c.coins)}"
        for c in month.per_creator[:SUMMARY_CREATORS]
    ]


def _amount(report: SpendingReport, coins: int) -> str:
    money = report.money(coins)
    if money is None:
        return f"{coins:,} coins"
    return f"{coins:,} coins (about {format_money(money, report.currency)})"
