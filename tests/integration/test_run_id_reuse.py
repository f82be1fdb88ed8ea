"""A run id names one run: a start under a taken id is the same start (the existing run
comes back) or is refused with Conflict (409), unless the caller attaches to the run that
is there. On every backend (SQLite file, in-memory, PostgreSQL), workflows and blueprints."""

from __future__ import annotations

import json

import pytest

import legato
from legato.blueprint import Blueprint, load_blueprint
from legato.errors import http_status
from tests.helpers import run

APP = legato.App("run-id-reuse")


@APP.workflow
async def signup(name: str, plan: str = "free") -> str:
    return f"{name}:{plan}"


@APP.workflow
async def noargs() -> str:
    return "nothing"


def test_the_same_start_again_returns_the_existing_run(store_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(store_url, app=APP) as client:
            first = await client.start(signup, "ann", run_id="signup-ann")
            assert first.created
            # The same arguments, spelled otherwise (keyword, default given): the same start.
            again = await client.start(signup, name="ann", plan="free", run_id="signup-ann")
            assert again == legato.RunHandle("signup-ann", "signup", False)
            by_json = await client.start("signup", input_json={"name": "ann"}, run_id="signup-ann")
            assert not by_json.created

    run(body)


def test_another_workflow_under_a_taken_id_is_refused_and_changes_nothing(
    store_url: str,
) -> None:
    async def body() -> None:
        async with legato.AsyncClient(store_url, app=APP) as client:
            await client.start(signup, "ann", run_id="signup-ann")
            for attach in (False, True):  # attaching never adopts another workflow's run
                with pytest.raises(legato.Conflict) as refused:
                    await client.start(noargs, run_id="signup-ann", attach=attach)
                assert http_status(refused.value) == 409
                message = str(refused.value)
                assert "'signup-ann' is taken by a run of workflow 'signup'" in message
                assert "'noargs'" in message
            stored = await client.get("signup-ann")
            assert stored.workflow == "signup"
            assert json.loads(stored.input or "null") == [["ann"], {}]
            page = await client.page()
            assert page.total == 1

    run(body)


def test_other_input_under_a_taken_id_is_refused_unless_attaching(store_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(store_url, app=APP) as client:
            await client.start(signup, "ann", run_id="signup-ann")
            with pytest.raises(legato.Conflict, match="other input"):
                await client.start(signup, "bob", run_id="signup-ann")
            with pytest.raises(legato.Conflict, match="other input"):
                await client.start(signup, "ann", "pro", run_id="signup-ann")
            attached = await client.start(signup, "bob", run_id="signup-ann", attach=True)
            assert attached == legato.RunHandle("signup-ann", "signup", False)
            stored = await client.get("signup-ann")
            assert json.loads(stored.input or "null") == [["ann"], {}]  # not bob's

    run(body)


def test_the_sync_client_refuses_the_same_way(store_url: str) -> None:
    with legato.Client(store_url, app=APP) as client:
        client.start(signup, "ann", run_id="r")
        with pytest.raises(legato.Conflict):
            client.start(noargs, run_id="r")
        assert client.start(signup, "bob", run_id="r", attach=True).created is False


HEAD = "document: {dsl: '1.0.3', namespace: tests, name: NAME, version: '1.0.0'}\n"
BODY = "do:\n  - greet:\n      set:\n        message: hello\n"


def blueprint(name: str = "greeter", body: str = BODY, filename: str = "greeter.yaml") -> Blueprint:
    return load_blueprint(HEAD.replace("NAME", name) + body, filename)


def test_blueprint_starts_under_a_taken_id(store_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(store_url, app=APP) as client:
            draft = blueprint()
            first = await client.start_blueprint(draft, {"n": 1}, run_id="b1")
            assert first.created
            # The same document read from another path, the same input: the same start.
            moved = blueprint(filename="elsewhere/greeter.yaml")
            again = await client.start_blueprint(moved, {"n": 1}, run_id="b1")
            assert again == legato.RunHandle("b1", "blueprint:tests/greeter", False)
            with pytest.raises(legato.Conflict, match="other input"):
                await client.start_blueprint(draft, {"n": 2}, run_id="b1")
            changed = blueprint(body=BODY.replace("hello", "bye"))
            with pytest.raises(legato.Conflict, match="other input"):
                await client.start_blueprint(changed, {"n": 1}, run_id="b1")
            other = blueprint(name="other")
            with pytest.raises(legato.Conflict, match="blueprint:tests/greeter"):
                await client.start_blueprint(other, {"n": 1}, run_id="b1", attach=True)
            attached = await client.start_blueprint(draft, {"n": 2}, run_id="b1", attach=True)
            assert not attached.created
            # A Python workflow under a blueprint run's id, and the other way round.
            with pytest.raises(legato.Conflict):
                await client.start(noargs, run_id="b1")
            await client.start(noargs, run_id="n1")
            with pytest.raises(legato.Conflict, match="workflow 'noargs'"):
                await client.start_blueprint(draft, {"n": 1}, run_id="n1")

    run(body)
