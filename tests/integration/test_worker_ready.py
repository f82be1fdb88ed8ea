"""``Worker.ready()``: returns once the worker is registered and serving, not before."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import legato
from tests.helpers import run


def test_ready_returns_once_the_worker_is_registered(db_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db_url) as client:
            worker = legato.Worker(client)
            ready = asyncio.ensure_future(worker.ready())
            await asyncio.sleep(0)
            assert not ready.done()  # run() was not called: nothing serves
            serving = asyncio.create_task(worker.run())
            try:
                await asyncio.wait_for(ready, 30)
                # Registered before ready() returned: its heartbeat row is there.
                workers = await client.list_workers()
                assert worker.worker_id in [w.worker_id for w in workers]
            finally:
                worker.stop()
                await serving

    run(body)


def test_a_worker_whose_store_cannot_open_never_becomes_ready(tmp_path: Path) -> None:
    """Its run() raises instead, which is why callers race ready() with it."""

    async def body() -> None:
        worker = legato.Worker(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
        ready = asyncio.ensure_future(worker.ready())
        with pytest.raises(legato.errors.LegatoError):
            await worker.run()
        assert not ready.done()
        ready.cancel()

    run(body)
