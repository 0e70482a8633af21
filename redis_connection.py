"""The Redis client the Redis-backed stores (accounts, jobs, watermark profiles) share, and
the one way their Redis failures become each store's own "unavailable" error.

The counterpart of `sqlite_connection` for the embedded stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

__all__ = ["redis_client", "redis_failures_as"]


def redis_client(url: str, *, timeout_s: float, binary: bool) -> Redis:
    """A client of `url` whose every call gives up after `timeout_s`; `binary` keeps values
    as bytes (images, PNGs), else they are decoded as UTF-8 text."""
    return Redis.from_url(
        url,
        decode_responses=not binary,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        # One immediate retry reconnects a pooled connection the server dropped (a
        # restart); more, with backoff, would only stretch every request of an outage.
        retry=Retry(NoBackoff(), 1),
    )


@contextmanager
def redis_failures_as(unavailable: Callable[[str], Exception]) -> Iterator[None]:
    """Raise `unavailable("Redis: ...")` for any Redis or socket failure inside the block.

    `NoScriptError` passes through: the server's script cache was flushed, and the caller
    loads its script again.
    """
    try:
        yield
    except NoScriptError:
        raise
    except (RedisError, OSError) as exc:
        raise unavailable(f"Redis: {exc}") from exc
