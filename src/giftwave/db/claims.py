"""The rows a worker may take now: due, a bounded batch, none another node holds.

Queues in the database (webhook deliveries, combos to close, push jobs, notice fan-outs) are
worked by every node at once. Each picks its batch with ``due_ids``: the ids of due rows in
order, at most ``limit``, locked FOR UPDATE SKIP LOCKED on PostgreSQL so a row another node
holds is skipped rather than waited for (SQLite has one writer, which serializes the claimers
anyway). The caller's UPDATE takes ``id IN (SELECT id FROM due)`` and checks its conditions
again, so two claimers never take one row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CTE, ColumnElement, select


def due_ids(
    id_column: ColumnElement[Any],
    *where: ColumnElement[bool],
    order_by: ColumnElement[Any],
    limit: int,
) -> CTE:
    """The CTE ``due`` of at most ``limit`` due ids, locked and skipped as above."""
    assert limit >= 1
    return (
        select(id_column)
        .where(*where)
        .order_by(order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        # Evaluated once: PostgreSQL may otherwise run a LIMIT … SKIP LOCKED subquery again for
        # the UPDATE, each run skipping the rows the last one took: far more than ``limit``.
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
