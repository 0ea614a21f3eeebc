"""An evaluation pass runs with the garbage collector paused, and leaves it as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from followupd.engine import collection


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_the_collector_is_off_in_the_block_and_on_again_after() -> None:
    with collection.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_the_collector_is_on_again_after_a_pass_that_fails() -> None:
    with pytest.raises(RuntimeError, match="the pass failed"), collection.paused():
        raise RuntimeError("the pass failed")
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_of_overlapping_pauses_the_first_turns_it_back_on() -> None:
    first, second = collection.paused(), collection.paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends while the second still runs
    assert gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_program_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with collection.paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()
