"""What the accounts layer adds to each remove-watermark request: authenticate + admit + record.

    .venv/bin/python benchmarks/auth_overhead.py                  # both stores, 2000 requests
    .venv/bin/python benchmarks/auth_overhead.py --requests 5000 --concurrency 8

Runs the real `Accounts` facade in this process against the embedded SQLite store (a temp
file) and against Redis (its own `redis-server` on a free loopback port, never a shared one),
and prints per-request latency percentiles, sequential and with `--concurrency` requests in
flight. The key's limits are set so high that every request is admitted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auth.accounts import Accounts
from auth.key_admin import KeyAdmin
from auth.plans import enterprise_plan
from auth.redis_store import RedisStore
from auth.sqlite_store import SqliteStore
from auth.store import Store
from tests.auth.redis_server import REDIS_BINARY, RedisServer

UNLIMITED = enterprise_plan(rate_per_minute=10**9, burst=10**9, quota=10**12)


async def one_request(accounts: Accounts, key: str) -> float:
    started = time.perf_counter()
    account = await accounts.authenticate(key)
    await accounts.admit(account)
    await accounts.record(account, succeeded=True, processing_seconds=0.5)
    return time.perf_counter() - started


async def measure(store: Store, requests: int, concurrency: int) -> dict[str, list[float]]:
    key = (await KeyAdmin(store).create(name="bench", plan=UNLIMITED)).key
    accounts = Accounts(store)
    for _ in range(50):  # warm-up: connections, script cache, SQLite pages
        await one_request(accounts, key)
    sequential = [await one_request(accounts, key) for _ in range(requests)]

    async def worker(count: int) -> list[float]:
        return [await one_request(accounts, key) for _ in range(count)]

    share = max(1, requests // concurrency)
    concurrent = [
        seconds
        for batch in await asyncio.gather(*(worker(share) for _ in range(concurrency)))
        for seconds in batch
    ]
    await accounts.aclose()
    return {"sequential": sequential, f"{concurrency} in flight": concurrent}


def report(store_name: str, results: dict[str, list[float]]) -> None:
    for mode, samples in results.items():
        ms = sorted(seconds * 1000 for seconds in samples)
        p95 = ms[int(len(ms) * 0.95) - 1]
        p99 = ms[int(len(ms) * 0.99) - 1]
        print(
            f"{store_name:<8} {mode:<14} n={len(ms):<6} median {statistics.median(ms):6.3f} ms"
            f"   p95 {p95:6.3f} ms   p99 {p99:6.3f} ms"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="auth-bench-") as workdir:
        sqlite = SqliteStore(Path(workdir) / "accounts.sqlite3")
        report("sqlite", await measure(sqlite, args.requests, args.concurrency))
        if REDIS_BINARY is None:
            print("redis    skipped: redis-server is not installed")
            return
        server = RedisServer(Path(workdir) / "redis")
        server.start()
        try:
            redis = RedisStore.from_url(server.url)
            report("redis", await measure(redis, args.requests, args.concurrency))
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
