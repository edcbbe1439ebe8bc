"""Attacks on accounts against real servers, on SQLite and PostgreSQL: password guessing (one
account hammered from many addresses, a flood split over two server processes, many accounts
sprayed from one address, unknown accounts probed), a flood of log-ins that would hash at once,
and sign-ups probing which e-mail addresses have an account.

Each test speaks from its own client addresses (X-Forwarded-For, which the server trusts from
127.0.0.1 as it would from a proxy in front of it), so the tests of one server do not share an
address's allowance. The addresses are documentation addresses: headers only, never dialled.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from economy_client import problem_body
from serverproc import ServerGroup, ServerProcess, giftwave_env, migrate

from giftwave.db.urls import DatabaseUrl

NAME_FREE: Final = 3  # wrong passwords per login name before the first wait
ADDRESS_FREE: Final = 8
SIGN_UPS_FREE: Final = 3  # per address
BACKOFF_BASE_MS: Final = 2000
PASSWORD: Final = "right-password-1"
PROBLEM_KEYS: Final = {"type", "title", "status", "detail", "code"}
_addresses = (f"203.0.113.{n}" for n in itertools.count(1))
_people = itertools.count(1)


def from_address(address: str | None = None) -> dict[str, str]:
    return {"X-Forwarded-For": address or next(_addresses)}


@pytest.fixture(scope="module")
def servers(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    """Two server processes on one database, with a small allowance and a short backoff."""
    env = giftwave_env(module_bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_LOGIN_ATTEMPTS_FREE=str(NAME_FREE),
        GIFTWAVE_LOGIN_ADDRESS_ATTEMPTS_FREE=str(ADDRESS_FREE),
        GIFTWAVE_LOGIN_BACKOFF_BASE_MS=str(BACKOFF_BASE_MS),
        GIFTWAVE_REGISTER_ADDRESS_FREE=str(SIGN_UPS_FREE),
    )
    migrate(env)
    with ServerGroup(tmp_path_factory.mktemp("login"), env) as group:
        yield group.start("a", "b")


async def register(
    http: httpx.AsyncClient, handle: str, email: str, address: str | None = None
) -> httpx.Response:
    return await http.post(
        "/v1/auth/register",
        json={
            "handle": handle,
            "email": email,
            "password": PASSWORD,
            "birth_date": "1990-01-01",
            "country": "US",
        },
        headers=from_address(address),
    )


async def sign_up(http: httpx.AsyncClient) -> tuple[str, str]:
    """A new account: its handle and e-mail."""
    n = next(_people)
    handle, email = f"victim{n}", f"victim{n}@login.test"
    r = await register(http, handle, email)
    assert r.status_code == 201, r.text
    return handle, email


async def log_in(
    http: httpx.AsyncClient, login: str, password: str, address: str | None = None
) -> httpx.Response:
    return await http.post(
        "/v1/auth/login",
        json={"login": login, "password": password},
        headers=from_address(address),
    )


def assert_too_many(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
    body: dict[str, Any] = r.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["code"] == "too_many_attempts", body
    return body


async def test_hammering_one_account_waits_and_its_owner_gets_in_after(
    servers: list[ServerProcess],
) -> None:
    # A botnet: every guess from another address, so only the account's own limit can hold.
    async with httpx.AsyncClient(base_url=servers[0].base_url, timeout=30) as http:
        _, email = await sign_up(http)
        answers = [await log_in(http, email, f"guess-{n}") for n in range(12)]
        assert [r.status_code for r in answers[:NAME_FREE]] == [401] * NAME_FREE
        for refused in answers[NAME_FREE:]:
            assert_too_many(refused)
        # The owner, too, must wait: the right password is not tried while the name backs off.
        owner = next(_addresses)
        blocked = await log_in(http, email, PASSWORD, owner)
        assert_too_many(blocked)
        await asyncio.sleep(int(blocked.headers["retry-after"]))
        r = await log_in(http, email, PASSWORD, owner)
        assert r.status_code == 200, r.text
        assert r.json()["user"]["email"] == email
        # In: the name's count starts over.
        assert (await log_in(http, email, "guess-again")).status_code == 401


async def test_a_flood_over_two_processes_is_counted_once(servers: list[ServerProcess]) -> None:
    a, b = servers
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
    ):
        handle, _ = await sign_up(on_a)
        started = time.monotonic()
        answers = await asyncio.gather(
            *(log_in(on_a if n % 2 else on_b, handle, f"guess-{n}") for n in range(40))
        )
        elapsed_s = time.monotonic() - started
    assert elapsed_s < BACKOFF_BASE_MS / 1000, "the flood outlasted the first wait"
    statuses = sorted(r.status_code for r in answers)
    # One allowance for both processes: per process it would be twice as many.
    assert statuses.count(401) == NAME_FREE, statuses
    assert statuses.count(429) == 40 - NAME_FREE, statuses
    for r in answers:
        if r.status_code == 429:
            assert_too_many(r)


async def test_an_unknown_account_answers_like_a_wrong_password(
    servers: list[ServerProcess],
) -> None:
    async with httpx.AsyncClient(base_url=servers[1].base_url, timeout=30) as http:
        handle, _ = await sign_up(http)
        ghost = f"ghost{next(_people)}@login.test"
        for n in range(NAME_FREE + 2):
            known = await log_in(http, handle, f"guess-{n}")
            unknown = await log_in(http, ghost, f"guess-{n}")
            # The same status, code, headers that matter and body: nothing tells them apart.
            assert known.status_code == unknown.status_code, (known.text, unknown.text)
            assert problem_body(known) == problem_body(unknown)
            assert known.headers["content-type"] == unknown.headers["content-type"]
            assert ("retry-after" in known.headers) == ("retry-after" in unknown.headers)
            expected = 401 if n < NAME_FREE else 429
            assert known.status_code == expected, known.text


async def test_spraying_many_accounts_from_one_address_waits(
    servers: list[ServerProcess],
) -> None:
    sprayer = next(_addresses)
    async with httpx.AsyncClient(base_url=servers[0].base_url, timeout=30) as http:
        handle, _ = await sign_up(http)
        # One guess per account (real and not): only the address's own limit can hold.
        answers = [
            await log_in(http, f"someone{n}@spray.test", "Password1!", sprayer)
            for n in range(ADDRESS_FREE + 4)
        ]
        assert [r.status_code for r in answers[:ADDRESS_FREE]] == [401] * ADDRESS_FREE
        for refused in answers[ADDRESS_FREE:]:
            assert_too_many(refused)
        # A real account from that address waits as well; from another address, it gets in.
        assert_too_many(await log_in(http, handle, PASSWORD, sprayer))
        assert (await log_in(http, handle, PASSWORD)).status_code == 200


async def test_a_taken_email_is_no_different_from_a_taken_handle(
    servers: list[ServerProcess],
) -> None:
    """Sign-up answers "handle or e-mail already registered", never which: probing whether
    someone's e-mail has an account gets the answer a taken handle gets (docs/economy.md)."""
    async with httpx.AsyncClient(base_url=servers[0].base_url, timeout=30) as http:
        handle, email = await sign_up(http)
        n = next(_people)
        email_taken = await register(http, f"prober{n}", email)
        handle_taken = await register(http, handle, f"prober{n}@login.test")
        for r in (email_taken, handle_taken):
            assert r.status_code == 409, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "already_registered"
        assert problem_body(email_taken) == problem_body(handle_taken)
        # Nothing was created by either: the prober's new handle and e-mail are still free.
        assert (await register(http, f"prober{n}", f"prober{n}@login.test")).status_code == 201


async def test_sign_ups_from_one_address_are_limited(servers: list[ServerProcess]) -> None:
    """A script signing up (or probing e-mails) from one address soon waits; others do not."""
    script = next(_addresses)
    async with httpx.AsyncClient(base_url=servers[1].base_url, timeout=30) as http:
        _, known_email = await sign_up(http)
        answers = []
        for _ in range(SIGN_UPS_FREE + 3):
            n = next(_people)
            answers.append(await register(http, f"bot{n}", f"bot{n}@signup.test", script))
        assert [r.status_code for r in answers[:SIGN_UPS_FREE]] == [201] * SIGN_UPS_FREE
        for refused in answers[SIGN_UPS_FREE:]:
            assert_too_many(refused)
        # A probe of a registered e-mail from there waits the same: it learns nothing.
        assert_too_many(await register(http, f"bot{next(_people)}", known_email, script))
        n = next(_people)
        assert (await register(http, f"person{n}", f"person{n}@signup.test")).status_code == 201
        # Whichever server process it asks: the allowance is the database's.
        async with httpx.AsyncClient(base_url=servers[0].base_url, timeout=30) as other:
            n = next(_people)
            assert_too_many(await register(other, f"bot{n}", f"bot{n}@signup.test", script))


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


HASH_MEMORY_KIB: Final = 16 * 1024
HASHES_AT_ONCE: Final = 2
FLOOD: Final = 24


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_a_login_flood_hashes_a_few_at_a_time(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    """Each log-in hashes with 16 MiB here (64 MiB by default): all at once, a flood would
    take FLOOD times that; bounded, it takes HASHES_AT_ONCE times, and the rest wait their turn
    or are told to come back (503 busy), never a 500."""
    env = giftwave_env(bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB=str(HASH_MEMORY_KIB),
        GIFTWAVE_PASSWORD_HASHES_AT_ONCE=str(HASHES_AT_ONCE),
        GIFTWAVE_PASSWORD_HASH_WAIT_MS="50",
    )
    migrate(env)
    with ServerGroup(tmp_path, env) as group:
        [server] = group.start("a")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            assert (await log_in(http, "nobody@flood.test", "x")).status_code == 401  # warm
            before_kib = _peak_rss_kib(server.pid)
            answers = await asyncio.gather(
                *(log_in(http, f"n{n}@flood.test", "Password1!") for n in range(FLOOD))
            )
            grown_kib = _peak_rss_kib(server.pid) - before_kib
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {401, 503}, statuses
    busy = [r for r in answers if r.status_code == 503]
    assert busy, "every log-in was hashed at once"
    for r in busy:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "busy"
        assert int(r.headers["retry-after"]) >= 1
    # Unbounded (one thread each), this flood grew the peak by ~290 MiB; bounded, by ~55 MiB.
    assert grown_kib < (HASHES_AT_ONCE + 4) * HASH_MEMORY_KIB, grown_kib
