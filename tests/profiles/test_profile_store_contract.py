"""One contract, both profile stores: the accounts' SQLite file and Redis answer alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from profiles.records import WatermarkProfile, new_profile_id
from profiles.redis_store import RedisProfileStore
from profiles.sqlite_store import SqliteProfileStore
from profiles.store import ProfileStore, TooManyProfiles
from tests.auth.redis_server import RedisServer

pytestmark = pytest.mark.anyio

ALICE = "key_alice"
BOB = "key_bob"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16  # binary, with every byte value
ROOMY = 100


def a_profile(owner: str = ALICE, **fields: object) -> WatermarkProfile:
    values: dict[str, object] = {
        "id": new_profile_id(),
        "owner_id": owner,
        "name": "logo",
        "created_at": time.time(),
        "width": 120,
        "height": 40,
        "source": "upload",
        "png": PNG,
    }
    values.update(fields)
    return WatermarkProfile(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_profile_store(
    store_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], ProfileStore]:
    if store_kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()  # our private server: every test starts empty
        return lambda: RedisProfileStore.from_url(server.url, key_prefix="test:")
    return lambda: SqliteProfileStore(tmp_path / "accounts.sqlite3")


@pytest.fixture
async def profile_store(
    make_profile_store: Callable[[], ProfileStore],
) -> AsyncIterator[ProfileStore]:
    store = make_profile_store()
    yield store
    await store.aclose()


async def test_a_created_profile_reads_back_whole(profile_store: ProfileStore) -> None:
    profile = a_profile(name="Studio ✓ logo", source="estimated", width=641, height=97)
    await profile_store.create(profile, max_per_owner=ROOMY)
    assert await profile_store.get_for(ALICE, profile.id) == profile


async def test_the_list_holds_the_owners_profiles_oldest_first(
    profile_store: ProfileStore,
) -> None:
    now = time.time()
    newer = a_profile(created_at=now + 1, name="newer")
    older = a_profile(created_at=now, name="older")
    theirs = a_profile(BOB, created_at=now - 1)
    for profile in (newer, older, theirs):
        await profile_store.create(profile, max_per_owner=ROOMY)
    assert await profile_store.list_for(ALICE) == [older, newer]
    assert await profile_store.list_for(BOB) == [theirs]
    assert await profile_store.list_for("key_nobody") == []


async def test_another_owner_can_neither_read_nor_delete(profile_store: ProfileStore) -> None:
    profile = a_profile()
    await profile_store.create(profile, max_per_owner=ROOMY)
    assert await profile_store.get_for(BOB, profile.id) is None
    assert await profile_store.delete_for(BOB, profile.id) is False
    assert await profile_store.get_for(ALICE, profile.id) == profile


async def test_unknown_and_malformed_ids_are_absent(profile_store: ProfileStore) -> None:
    assert await profile_store.get_for(ALICE, new_profile_id()) is None
    assert await profile_store.get_for(ALICE, "wm_../../etc") is None
    assert await profile_store.delete_for(ALICE, new_profile_id()) is False


async def test_delete_removes_it_once(profile_store: ProfileStore) -> None:
    kept, deleted = a_profile(name="kept"), a_profile(name="deleted")
    for profile in (kept, deleted):
        await profile_store.create(profile, max_per_owner=ROOMY)
    assert await profile_store.delete_for(ALICE, deleted.id) is True
    assert await profile_store.delete_for(ALICE, deleted.id) is False
    assert await profile_store.get_for(ALICE, deleted.id) is None
    assert await profile_store.list_for(ALICE) == [kept]


async def test_the_cap_counts_per_owner_and_frees_on_delete(profile_store: ProfileStore) -> None:
    first, second = a_profile(), a_profile()
    await profile_store.create(first, max_per_owner=2)
    await profile_store.create(second, max_per_owner=2)
    with pytest.raises(TooManyProfiles) as refused:
        await profile_store.create(a_profile(), max_per_owner=2)
    assert refused.value.limit == 2
    assert len(await profile_store.list_for(ALICE)) == 2
    await profile_store.create(a_profile(BOB), max_per_owner=2)  # Bob has his own cap
    await profile_store.delete_for(ALICE, first.id)
    await profile_store.create(a_profile(), max_per_owner=2)
    assert len(await profile_store.list_for(ALICE)) == 2


async def test_concurrent_creates_never_pass_the_cap(
    make_profile_store: Callable[[], ProfileStore],
) -> None:
    stores = [make_profile_store() for _ in range(4)]
    try:
        outcomes = await asyncio.gather(
            *(stores[n % len(stores)].create(a_profile(), max_per_owner=3) for n in range(12)),
            return_exceptions=True,
        )
        refused = [outcome for outcome in outcomes if isinstance(outcome, TooManyProfiles)]
        others = [o for o in outcomes if o is not None and not isinstance(o, TooManyProfiles)]
        assert others == []
        assert len(refused) == 9
        assert len(await stores[0].list_for(ALICE)) == 3
    finally:
        for store in stores:
            await store.aclose()


async def test_a_second_client_sees_the_same_profiles(
    make_profile_store: Callable[[], ProfileStore],
) -> None:
    writer, reader = make_profile_store(), make_profile_store()
    try:
        profile = a_profile()
        await writer.create(profile, max_per_owner=ROOMY)
        assert await reader.get_for(ALICE, profile.id) == profile
    finally:
        await writer.aclose()
        await reader.aclose()
