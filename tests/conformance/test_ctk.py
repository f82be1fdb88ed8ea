"""The DSL conformance kit (CTK): every scenario of its feature files, run as a blueprint.

The feature files are read in place from the shared conformance folder beside the
repository (never copied in). Each scenario's workflow definition is started as a draft
blueprint run on a real store (SQLite and PostgreSQL, like the rest of the suite) with a
worker in this process, then its ``Then`` steps are checked against the run record and
journal. Scenarios that call live hosts are pointed at a local server instead, by rewriting
the definition text in memory before it is loaded.

A step this runner does not know fails the scenario: a new or reworded CTK step must be
implemented here, not silently passed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import legato
from legato.blueprint import load_blueprint
from legato.records import JournalEntry, RunRecord
from legato.runtime.context import seq_key
from tests.conformance.folder import conformance_folder, require
from tests.conformance.gherkin import Feature, Scenario, Step, parse_feature
from tests.helpers import run, running_worker
from tests.servers import LocalServer

FEATURES = conformance_folder() / "ctk" / "features"
EXPECTED_SCENARIOS = 21
RUN_TIMEOUT = 30.0

# Hosts the CTK calls, served by the local server instead (same paths).
LIVE_HOSTS = ("https://petstore.swagger.io", "https://httpbin.org")
# An address the definition would call: an endpoint's or uri's value.
CALLED_URL = re.compile(r"""\b(?:uri|endpoint):\s*["']?([a-z][a-z0-9+.-]*://[^\s"'/]+)""")


def load_scenarios() -> list[tuple[Feature, Scenario]]:
    """Every scenario of every feature file, in file order (none if the folder is absent)."""
    if not FEATURES.is_dir():
        return []
    found: list[tuple[Feature, Scenario]] = []
    for path in sorted(FEATURES.glob("*.feature")):
        feature = parse_feature(path.read_text(encoding="utf-8"), path.name)
        found.extend((feature, scenario) for scenario in feature.scenarios)
    return found


def require_features() -> None:
    require(FEATURES, "CTK feature files")


SCENARIOS = load_scenarios()
SCENARIO_PARAMS = [
    pytest.param(feature, scenario, id=f"{feature.file}::{scenario.name}")
    for feature, scenario in SCENARIOS
] or [pytest.param(None, None, id="ctk-missing")]


def test_every_scenario_found() -> None:
    require_features()
    ids = [f"{feature.file}::{scenario.name}" for feature, scenario in SCENARIOS]
    assert len(ids) == EXPECTED_SCENARIOS, f"expected {EXPECTED_SCENARIOS} scenarios: {ids}"
    assert len(set(ids)) == len(ids), f"scenario ids must be unique: {ids}"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as local:
        yield local


@pytest.mark.parametrize(("feature", "scenario"), SCENARIO_PARAMS)
def test_scenario(
    feature: Feature | None, scenario: Scenario | None, server: LocalServer, db_url: str
) -> None:
    require_features()
    assert feature is not None and scenario is not None

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            state = ScenarioRun(feature, scenario, server.url, client)
            for step in scenario.steps:
                await run_step(state, step)
            if state.record is None:
                pytest.fail(f"{state.where(scenario.line)}: the scenario never runs the workflow")

    run(body)


# --- scenario state and step matching --------------------------------------------------------


@dataclass
class ScenarioRun:
    """What the steps of one scenario arrange, and what running the workflow produced."""

    feature: Feature
    scenario: Scenario
    server_url: str
    client: legato.AsyncClient
    definition: str | None = None
    input: Any = None
    record: RunRecord | None = None
    journal: list[JournalEntry] = field(default_factory=list)

    def where(self, line: int) -> str:
        return f"{self.feature.file}:{line} ({self.scenario.name})"

    def ended(self, step: Step) -> RunRecord:
        if self.record is None:
            pytest.fail(f"{self.where(step.line)}: '{step.text}' before 'the workflow is executed'")
        return self.record

    def describe(self) -> str:
        """The run's status, output and error, for failure messages."""
        record = self.record
        if record is None:
            return "no run"
        status = record.status.value
        return f"run {record.run_id} is {status}; output={record.output} error={record.error}"

    def output(self, step: Step) -> Any:
        """The decoded output of a run that completed (fails the step otherwise)."""
        record = self.ended(step)
        if record.status is not legato.RunStatus.COMPLETED:
            pytest.fail(f"{self.where(step.line)}: expected a completed run; {self.describe()}")
        return json.loads(record.output) if record.output else None

    def task_names(self) -> list[str]:
        """The last path segment of each journalled step, in the order the tasks ran.

        A ``switch`` task runs no step: its journalled decision (``<pointer>#switch``)
        is its trace.
        """
        steps = sorted(
            (entry for entry in self.journal if _ran_a_task(entry)),
            key=lambda entry: seq_key(entry.seq),
        )
        return [task_name(entry.name.removesuffix(SWITCHED)) for entry in steps]


SWITCHED = "#switch"


def _ran_a_task(entry: legato.JournalEntry) -> bool:
    if entry.kind is legato.EntryKind.DECISION:
        return entry.name.endswith(SWITCHED)
    return entry.kind is legato.EntryKind.STEP


Handler = Callable[[ScenarioRun, Step, re.Match[str]], Awaitable[None]]
STEPS: list[tuple[re.Pattern[str], bool, Handler]] = []  # pattern, takes a doc string, handler


def ctk_step(pattern: str, docstring: bool = False) -> Callable[[Handler], Handler]:
    """Register a handler for the step texts that fully match ``pattern``."""

    def register(handler: Handler) -> Handler:
        STEPS.append((re.compile(pattern), docstring, handler))
        return handler

    return register


async def run_step(state: ScenarioRun, step: Step) -> None:
    where = state.where(step.line)
    for pattern, takes_docstring, handler in STEPS:
        match = pattern.fullmatch(step.text)
        if match is None:
            continue
        if takes_docstring != (step.docstring is not None):
            wanted = "needs a doc string" if takes_docstring else "takes no doc string"
            pytest.fail(f"{where}: step '{step.text}' {wanted}", pytrace=False)
        if step.content_type not in (None, "yaml", "json"):
            pytest.fail(f"{where}: unsupported doc string type {step.content_type!r}")
        await handler(state, step, match)
        return
    pytest.fail(f"{where}: no CTK step matches '{step.keyword} {step.text}'", pytrace=False)


def parse_docstring(step: Step) -> Any:
    """The step's YAML (or JSON, which YAML reads too) doc string as data."""
    assert step.docstring is not None
    return yaml.safe_load(step.docstring)


# --- arrange and act ---------------------------------------------------------------------------


@ctk_step(r"a workflow with definition:", docstring=True)
async def define_workflow(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    assert step.docstring is not None
    state.definition = point_at_local_server(step.docstring, state.server_url)


@ctk_step(r"(?:given )?the workflow input is:", docstring=True)
async def set_input(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    state.input = parse_docstring(step)


@ctk_step(r"the workflow is executed")
async def execute(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    if state.definition is None:
        pytest.fail(f"{state.where(step.line)}: no workflow definition before executing it")
    blueprint = load_blueprint(state.definition, f"{state.feature.file}:{state.scenario.line}")
    handle = await state.client.start_blueprint(blueprint, input=state.input)
    state.record = await state.client.wait(handle.run_id, timeout=RUN_TIMEOUT)
    state.journal = await state.client.journal(handle.run_id)


def point_at_local_server(definition: str, server_url: str) -> str:
    """The definition with the CTK's live hosts replaced by the local server.

    Any other address the definition would call fails the test, so a new scenario never
    reaches the network unnoticed.
    """
    for host in LIVE_HOSTS:
        definition = definition.replace(host, server_url)
    for called in CALLED_URL.findall(definition):
        if called != server_url:
            pytest.fail(f"the definition calls {called}, which no local server stands in for")
    return definition


# --- assert: the run ---------------------------------------------------------------------------


@ctk_step(r"the workflow should complete")
async def should_complete(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    state.output(step)


@ctk_step(r"the workflow should complete with output:", docstring=True)
async def should_complete_with(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    output, expected = state.output(step), parse_docstring(step)
    assert output == expected, f"{state.where(step.line)}: output {output!r} != {expected!r}"


@ctk_step(r"the workflow should fault")
async def should_fault(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    problem_of(state, step)


@ctk_step(r"the workflow should fault with error:", docstring=True)
async def should_fault_with(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    problem = problem_of(state, step)
    expected = parse_docstring(step)
    actual = {key: problem.get(key) for key in expected}
    assert actual == expected, f"{state.where(step.line)}: DSL error {problem}"


def problem_of(state: ScenarioRun, step: Step) -> dict[str, Any]:
    """The DSL error (problem details) of a run that faulted (fails the step otherwise)."""
    record = state.ended(step)
    where = state.where(step.line)
    if record.status is not legato.RunStatus.FAILED:
        pytest.fail(f"{where}: expected a faulted run; {state.describe()}")
    error = record.error_dict() or {}
    problem = error.get("problem")
    if not isinstance(problem, dict):
        pytest.fail(f"{where}: the run's error has no DSL problem: {record.error}")
    return problem


# --- assert: the output ------------------------------------------------------------------------


@ctk_step(r"the workflow output should have properties ((?:'[^']+'(?:, )?)+)")
async def should_have_properties(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    output = state.output(step)
    for path in re.findall(r"'([^']+)'", match[1]):
        value_at(output, path, state.where(step.line))


@ctk_step(r"the workflow output should have a '([^']+)' property with value:", docstring=True)
async def should_have_value(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    where = state.where(step.line)
    value, expected = value_at(state.output(step), match[1], where), parse_docstring(step)
    assert value == expected, f"{where}: '{match[1]}' is {value!r}, not {expected!r}"


@ctk_step(r"the workflow output should have a '([^']+)' property containing (\d+) items?")
async def should_have_items(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    where = state.where(step.line)
    value = value_at(state.output(step), match[1], where)
    assert isinstance(value, list | dict), f"{where}: '{match[1]}' is {value!r}, not a collection"
    assert len(value) == int(match[2]), f"{where}: '{match[1]}' is {value!r}"


def value_at(data: Any, path: str, where: str) -> Any:
    """The value at a dotted path (``a.b.0``) of the output; fails if it is not there."""
    value = data
    for key in path.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            pytest.fail(f"{where}: the output has no '{path}' (at '{key}'): {data!r}")
    return value


# --- assert: task order ------------------------------------------------------------------------


@ctk_step(r"(\S+) should run (first|last)")
async def should_run_at_end(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    state.ended(step)
    names = state.task_names()
    where = state.where(step.line)
    assert names, f"{where}: no task ran; {state.describe()}"
    actual = names[0] if match[2] == "first" else names[-1]
    assert actual == match[1], f"{where}: tasks ran in the order {names}"


@ctk_step(r"(\S+) should run (after|before) (\S+)")
async def should_run_relative(state: ScenarioRun, step: Step, match: re.Match[str]) -> None:
    state.ended(step)
    names = state.task_names()
    where = state.where(step.line)
    task, relation, other = match[1], match[2], match[3]
    for name in (task, other):
        assert name in names, f"{where}: {name} never ran; tasks ran in the order {names}"
    if relation == "after":
        assert names.index(task) > names.index(other), f"{where}: order {names}"
    else:
        assert names.index(task) < names.index(other), f"{where}: order {names}"


def task_name(pointer: str) -> str:
    """The task's own name: the last segment of its JSON pointer (``/do/0/setRed``)."""
    return pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")


# --- the runner's own checks (no workflow runs) ------------------------------------------------


def offline_state(steps: str, tmp_path: Path) -> tuple[ScenarioRun, tuple[Step, ...]]:
    feature = parse_feature(f"Feature: F\n  Scenario: S\n{steps}", "self.feature")
    scenario = feature.scenarios[0]
    client = legato.AsyncClient(f"sqlite:///{tmp_path / 'unused.db'}")  # never opened here
    return ScenarioRun(feature, scenario, "http://127.0.0.1:1", client), scenario.steps


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("    Then the workflow should cancel\n", "no CTK step matches 'Then the workflow"),
        ("    Then the workflow should complete\n", "before 'the workflow is executed'"),
        ("    Then setRed should run first\n", "before 'the workflow is executed'"),
        ("    Given a workflow with definition:\n", "needs a doc string"),
        ('    When the workflow is executed\n    """\n    x\n    """\n', "takes no doc string"),
        ("    When the workflow is executed\n", "no workflow definition"),
    ],
    ids=[
        "unknown-step",
        "check-before-run",
        "order-before-run",
        "no-docstring",
        "docstring",
        "no-def",
    ],
)
def test_runner_fails_loudly(steps: str, message: str, tmp_path: Path) -> None:
    state, (first, *_) = offline_state(steps, tmp_path)
    with pytest.raises(pytest.fail.Exception, match=re.escape(message)):
        run(lambda: run_step(state, first))


def test_live_hosts_are_rewritten_and_others_refused() -> None:
    local = "http://127.0.0.1:8000"
    text = "uri: https://petstore.swagger.io/v2/pet/1\nendpoint: 'https://httpbin.org/x'\n"
    assert point_at_local_server(text, local) == (f"uri: {local}/v2/pet/1\nendpoint: '{local}/x'\n")
    assert point_at_local_server("source: https://fake-source.com", local)  # not called
    with pytest.raises(pytest.fail.Exception, match=re.escape("https://example.com")):
        point_at_local_server('endpoint: "https://example.com/a"', local)


def test_output_paths_and_task_names() -> None:
    data = {"a": {"b": [{"c": 1}]}}
    assert value_at(data, "a.b.0.c", "here") == 1
    with pytest.raises(pytest.fail.Exception, match=re.escape("no 'a.x'")):
        value_at(data, "a.x", "here")
    assert task_name("/do/0/tryGetPet/try/0/getPet") == "getPet"
    assert task_name("/do/1/a~1b~0c") == "a/b~c"
