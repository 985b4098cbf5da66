"""In-process engines for unit tests, on a clock the test moves by hand.

Here ``engine`` is an :class:`Engine` object in this process (not the engine
process of tests/conftest.py); ``clock`` starts at the test module's
``START`` (epoch seconds) and moves when a test sets ``clock.now``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tablekeeper.engine.engine import Engine, EngineConfig


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> Clock:
    return Clock(request.module.START)


@pytest.fixture
def engine(tmp_path: Path, clock: Clock) -> Iterator[Engine]:
    engine = Engine(EngineConfig(tmp_path), clock=clock)
    yield engine
    engine.close()
