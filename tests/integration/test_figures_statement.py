"""A creator's statement adds up (issue #17, item 4), on SQLite and PostgreSQL: per-stream and
per-day cents are shared out of the total by largest remainder, so the rows sum to the total
exactly, and the CSV ends with the same totals as the JSON."""

from __future__ import annotations

import csv
import io

from economy_client import AppFactory, economy_app, grant, register

__all__ = ["economy_app"]


async def test_statement_rows_add_up_to_the_total_in_json_and_csv(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        viewer, creator = await register(client), await register(client, "creator")
        await grant(client, viewer, 100)
        # Three streams earning 3, 1 and 1 diamonds: 1.5, 0.5 and 0.5 cents, 2.5 in all.
        # Floored per row that was 1 + 0 + 0 beside a total of 2.
        for roses in (3, 1, 1):
            stream = await creator.go_live()
            r = await viewer.gift(stream, "rose", count=roses)
            assert r.status_code == 201, r.text
            r = await creator.post(f"/v1/streams/{stream}/end")
            assert r.status_code == 200, r.text

        statement = (await creator.get("/v1/creators/me/statement")).json()
        totals = statement["totals"]
        assert (totals["diamonds"], totals["cash_value_cents"]) == (5, 2)
        by_stream = statement["by_stream"]
        assert len(by_stream) == 3
        assert sum(s["cash_value_cents"] for s in by_stream) == 2
        for s in by_stream:  # each row is its value rounded down or up, never further
            assert s["cash_value_cents"] in (s["diamonds"] // 2, s["diamonds"] // 2 + 1), s
        assert [d["cash_value_cents"] for d in statement["by_day"]] == [2]

        r = await creator.get("/v1/creators/me/statement", params={"format": "csv"})
        assert r.status_code == 200, r.text
        *lines, total = csv.DictReader(io.StringIO(r.text))
        assert len(lines) == 3
        assert total["day"] == "total"
        assert [int(total[k]) for k in ("gifts", "coins", "diamonds")] == [
            totals["gifts"],
            totals["coins"],
            totals["diamonds"],
        ]
        assert total["cash_value_usd"] == "0.02"
        assert sum(int(line["diamonds"]) for line in lines) == totals["diamonds"]
        cents = sum(round(float(line["cash_value_usd"]) * 100) for line in lines)
        assert cents == totals["cash_value_cents"] == 2
