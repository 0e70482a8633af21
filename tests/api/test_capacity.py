"""`UploadSlots`: one bound on the uploads an HTTP worker holds, whichever routes hold them."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from api.capacity import AT_CAPACITY, UploadSlots
from errors import ServiceUnavailable


def test_past_the_limit_a_request_is_told_to_come_back_and_a_freed_slot_serves_again() -> None:
    slots = UploadSlots(2)
    with ExitStack() as held:
        held.enter_context(slots.hold())
        held.enter_context(slots.hold())
        with pytest.raises(ServiceUnavailable) as refused, slots.hold():
            pass
        assert (str(refused.value), refused.value.headers) == (AT_CAPACITY, {"Retry-After": "5"})
        assert slots.held == 2
    assert slots.held == 0
    with slots.hold():
        assert slots.held == 1


def test_a_slot_is_given_back_when_the_work_fails_and_a_route_may_refuse_on_its_own() -> None:
    slots = UploadSlots(1)
    with pytest.raises(ValueError), slots.hold():
        raise ValueError("the upload was broken")
    assert slots.held == 0
    with pytest.raises(ServiceUnavailable), slots.hold(also_refuse=True):
        pass
    assert slots.held == 0
