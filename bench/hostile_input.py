"""Hostile blueprints: how long and how much memory the validator takes to refuse each.

    .venv/bin/python bench/hostile_input.py

Each document is validated in a fresh child process (``load_blueprint``, as ``legato
blueprint validate`` and the client do). Reported per document: the seconds from the
call to its refusal and the growth of the child's peak RSS during the call, in MB. The
target for each: refused in at most 2 s and under 100 MB. Before the limits, the alias
bomb took 10.7 s and 400 MB and the 50,000-term expression 81 s and then crashed jq.

The documents: a 6-level YAML alias bomb (590 bytes expanding to 9^7 values); one
expression of 50,000 terms (200 KB); flow lists nested 330 deep; a tagged key that does
not parse (``!!float abc: 1``); JSON nested 5,000 deep; and a document of ``set``
tasks as large as the size limit allows (256 KB), for the cost of the largest document
accepted for validation.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

HEAD = 'document: {dsl: "1.0.0", namespace: bench, name: hostile, version: "1.0.0"}\n'


def documents() -> dict[str, str]:
    bomb = HEAD + 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    bomb += "".join(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 7))
    bomb += "do: [{s: {set: {v: *a6}}}]\n"
    expression = " + ".join([".a"] * 50_000)
    from legato.blueprint.limits import Limits

    tasks = []
    size = len(HEAD) + 4
    i = 0
    while True:
        task = f"  - t{i}:\n      set:\n        value: '${{ .a + {i} }}'\n"
        if size + len(task) > Limits.max_bytes:
            break
        tasks.append(task)
        size += len(task)
        i += 1
    return {
        "alias_bomb": bomb,
        "expression_50000_terms": HEAD
        + f'do:\n  - s:\n      set:\n        v: "${{ {expression} }}"\n',
        "flow_nested_330": HEAD + "do: " + "[" * 330 + "]" * 330 + "\n",
        "tagged_key": HEAD + "!!float abc: 1\ndo: []\n",
        "json_nested_5000": '{"document": ' + "[" * 5000 + "]" * 5000 + "}",
        "set_tasks_at_size_limit": HEAD + "do:\n" + "".join(tasks),
    }


def child(name: str) -> None:
    from legato.blueprint import load_blueprint
    from legato.errors import BlueprintInvalid

    text = documents()[name]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        load_blueprint(text, f"{name}.yaml")
        outcome = "accepted"
    except BlueprintInvalid as exc:
        outcome = exc.problems[0].message if exc.problems else "refused"
    seconds = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"name": name, "seconds": seconds, "mb": grown, "outcome": outcome}))


def emit(metric: str, value: float, unit: str) -> None:
    row = {"system": "legato", "workload": "HOSTILE", "metric": metric}
    print(json.dumps({**row, "value": round(value, 4), "unit": unit}), flush=True)


def main() -> None:
    for name in documents():
        done = subprocess.run(
            [sys.executable, __file__, "--child", name],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            print(f"{name}: the child failed ({done.returncode}): {done.stderr}", file=sys.stderr)
            emit(f"{name}_failed", 1, "")
            continue
        found = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: {found['outcome'][:110]}", file=sys.stderr)
        emit(f"{name}_s", found["seconds"], "s")
        emit(f"{name}_mb", found["mb"], "MB")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
