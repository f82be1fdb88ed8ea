"""``legato queues ...``: limits on a queue that every worker honours."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import typer

from ..client import AsyncClient
from .common import (
    Usage,
    at_least,
    existing_db,
    handles_errors,
    not_empty,
    out,
    run_async,
    seconds,
    settings,
)

queues_app = typer.Typer(help="Queue limits shared by all workers.", no_args_is_help=True)


@queues_app.command("set")
@handles_errors
def queues_set(
    name: str = typer.Argument(..., callback=not_empty, help="Queue name."),
    concurrency: int | None = typer.Option(
        None, metavar="N", callback=at_least(1), help="Runs executing at once, all workers."
    ),
    key_concurrency: int | None = typer.Option(
        None, metavar="N", callback=at_least(1), help="The same, per concurrency key."
    ),
    rate: int | None = typer.Option(
        None, metavar="N", callback=at_least(1), help="Runs that may start per --per seconds."
    ),
    per: float | None = typer.Option(
        None, metavar="SECONDS", callback=seconds, help="Rate period in seconds (default 1)."
    ),
) -> None:
    """Set (replace) a queue's limits; options left out are lifted."""
    if per is not None and rate is None:
        raise Usage("--per goes with --rate: give --rate N --per SECONDS")
    per = 1.0 if per is None else per

    async def go() -> Any:
        async with AsyncClient(settings.db) as client:
            return await client.set_queue(
                name,
                concurrency=concurrency,
                key_concurrency=key_concurrency,
                rate_limit=rate,
                rate_period=per,
            )

    run_async(go())
    out.print(f"queue {name!r}: {_limits_text(concurrency, key_concurrency, rate, per)}")


@queues_app.command("list")
@handles_errors
def queues_list(as_json: bool = typer.Option(False, "--json", help="Print JSON lines.")) -> None:
    """Queues with limits."""

    async def go() -> Any:
        async with AsyncClient(existing_db()) as client:
            return await client.queues()

    for q in run_async(go()):
        if as_json:
            print(json.dumps(dataclasses.asdict(q)))
        else:
            limits = _limits_text(q.concurrency, q.key_concurrency, q.rate_limit, q.rate_period)
            out.print(f"{q.name}: {limits}")


def _limits_text(
    concurrency: int | None, per_key: int | None, rate: int | None, per: float | None
) -> str:
    parts = []
    if concurrency is not None:
        parts.append(f"at most {concurrency} at once")
    if per_key is not None:
        parts.append(f"at most {per_key} per key")
    if rate is not None:
        parts.append(f"at most {rate} starts per {per:g} s")
    return ", ".join(parts) or "no limits"
