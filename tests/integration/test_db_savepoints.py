"""A savepoint opened first in a transaction is part of that transaction, on both backends.

Python's sqlite3 (in its default, legacy transaction mode) opens a transaction only before a
data-changing statement, so a SAVEPOINT sent first opened one of its own, and releasing it
committed: a rollback later in what the code called one transaction kept the first insert. A
partial write. `make_engine` begins the transaction itself before such a savepoint.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, func, insert, select

from giftwave.db.upsert import insert_new

scratch = MetaData()
rows = Table(
    "savepoint_rows", scratch, Column("id", Integer, primary_key=True, autoincrement=False)
)


class Boom(Exception):
    pass


@pytest.fixture
def table(sa_engine: Engine) -> Engine:
    scratch.create_all(sa_engine)
    return sa_engine


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(rows)).scalar_one())


def test_a_rollback_undoes_an_insert_made_under_a_first_savepoint(table: Engine) -> None:
    def write_then_fail() -> None:
        with table.begin() as conn:
            assert insert_new(conn, insert(rows).values(id=1))
            conn.execute(insert(rows).values(id=2))
            raise Boom

    with pytest.raises(Boom):
        write_then_fail()
    assert count(table) == 0


def test_a_refused_first_savepoint_leaves_the_transaction_going(table: Engine) -> None:
    with table.begin() as conn:
        conn.execute(insert(rows).values(id=1))
    with table.begin() as conn:
        assert not insert_new(conn, insert(rows).values(id=1))  # held already: refused
        assert insert_new(conn, insert(rows).values(id=2))
    assert count(table) == 2


def test_a_connection_without_begin_keeps_the_savepoint_in_its_transaction(
    table: Engine,
) -> None:
    with table.connect() as conn:
        assert insert_new(conn, insert(rows).values(id=3))
        conn.rollback()
    assert count(table) == 0
