"""``make bench``: Legato and DBOS on the same workloads, in one run, as ratios.

Four passes, each printing its measurements as JSON lines:

1. Legato on SQLite (bench/legato_bench.py, this interpreter),
2. DBOS on SQLite (bench/dbos/run_dbos.py in DBOS's own virtual environment, made by
   bench/dbos/setup.sh),
3. Legato on PostgreSQL (``--db-kind postgres``): the same workloads, plus W1's throughput
   with 1, 2 and 4 worker processes (SCALE),
4. DBOS on PostgreSQL (``--database-url``).

Then a table per database with the ratio and the target for each metric (and, for Legato
alone, what a blueprint task costs against a code step: workload BP, and how soon a signal
ends a wait while the run's step is in flight: workload W8), and a table of the scaling
measurement. The lines are also written to bench/results/<timestamp>.jsonl.
The PostgreSQL server is $BENCH_PG_SERVER (default postgresql://postgres@127.0.0.1:5432);
each workload gets a fresh database ``bench_...`` there, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
DBOS_PYTHON = HERE / "dbos" / ".venv" / "bin" / "python"
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")

Check = Callable[[float, float], bool] | None

# (workload, metric, target as text, check(legato, dbos) -> bool); lower is better except
# for the metrics in HIGHER_IS_BETTER.
HIGHER_IS_BETTER = {"workflows_per_s"}
TARGETS: list[tuple[str, str, str, Check]] = [
    ("W1", "per_step_ms", "≤ 1/20 of DBOS", lambda lg, db: lg <= db / 20),
    ("W1", "workflows_per_s", "", None),
    ("W2", "wall_s", "≤ 0.06 s and ≤ 1/5 of DBOS", lambda lg, db: lg <= 0.06 and lg <= db / 5),
    ("W3", "rss_growth_mb", "< 30 MB", lambda lg, db: lg < 30),
    ("W3", "start_to_all_waiting_s", "", None),
    ("W3", "signal_to_done_s", "≤ 1/5 of DBOS", lambda lg, db: lg <= db / 5),
    ("W4", "duplicated_completed_steps", "0", lambda lg, db: lg == 0),
    ("W4", "reexecuted_steps", "", None),
    ("W4", "restart_to_done_s", "≤ DBOS", lambda lg, db: lg <= db),
]
PG_TARGETS: list[tuple[str, str, str, Check]] = [
    ("W1", "per_step_ms", "≤ 1/10 of DBOS", lambda lg, db: lg <= db / 10),
    ("W1", "workflows_per_s", "", None),
    ("W2", "wall_s", "", None),
    ("W3", "rss_growth_mb", "", None),
    ("W3", "start_to_all_waiting_s", "", None),
    ("W3", "signal_to_done_s", "≤ 1/5 of DBOS", lambda lg, db: lg <= db / 5),
    ("W4", "duplicated_completed_steps", "0", lambda lg, db: lg == 0),
    ("W4", "reexecuted_steps", "", None),
    ("W4", "restart_to_done_s", "", None),
]
BLUEPRINT_TARGET = 2.0  # a blueprint task costs at most twice a code step (workload BP)
SIGNAL_WAIT_TARGET_S = 0.3  # W8: every wait ends at most this long after its signal was sent
SCALE_WORKERS = (1, 2, 4)
SCALING_TARGET = 1.6  # 4 worker processes reach at least 1.6 times the throughput of 1
FEED_READS_TARGET = 2.0  # client.result reads a run about twice (start, end): no polling
HOSTILE_TARGET_S, HOSTILE_TARGET_MB = 2.0, 100.0  # each hostile document refused within
HOSTILE_DOCUMENTS = (  # (name, has a target): the last is the largest document accepted
    ("alias_bomb", True),
    ("expression_50000_terms", True),
    ("flow_nested_330", True),
    ("tagged_key", True),
    ("json_nested_5000", True),
    ("set_tasks_at_size_limit", False),
)


def collect(name: str, command: list[str]) -> tuple[list[dict[str, object]], bool]:
    """Run one pass; its JSON lines (also echoed) and whether it succeeded."""
    print(f"== {name}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        print(json.dumps(row), flush=True)
    took = time.perf_counter() - started
    ok = done.returncode == 0
    status = "done" if ok else f"FAILED (exit code {done.returncode})"
    print(f"== {name}: {status} in {took:.1f}s", file=sys.stderr, flush=True)
    return rows, ok


def ratio_table(
    title: str,
    value: dict[tuple[str, str, str], float],
    ours: str,
    peer: str,
    targets: list[tuple[str, str, str, Check]],
) -> tuple[Table, int]:
    table = Table(title=title)
    for column in ("workload", "metric", ours, peer, "Legato better by", "target", "met"):
        table.add_column(column)
    failed = 0
    for workload, metric, target, check in targets:
        lg = value.get((ours, workload, metric))
        db = value.get((peer, workload, metric))
        if lg is None or db is None:
            table.add_row(workload, metric, str(lg), str(db), "", target, "missing")
            failed += 1
            continue
        good, bad = (lg, db) if metric in HIGHER_IS_BETTER else (db, lg)
        ratio = f"{good / bad:.1f}x" if bad and good else "-"
        met = "" if check is None else ("yes" if check(lg, db) else "NO")
        failed += met == "NO"
        table.add_row(workload, metric, f"{lg:g}", f"{db:g}", ratio, target, met)
    return table, failed


def add_blueprint_rows(table: Table, value: dict[tuple[str, str, str], float], ours: str) -> int:
    """BP: 200 runs of a 10-task blueprint against 200 runs of a 10-step code workflow, on the
    same store in the same process (Legato only), and the blueprint-over-code target."""
    table.add_section()
    for metric in ("code_per_step_ms", "blueprint_per_task_ms"):
        found = value.get((ours, "BP", metric))
        table.add_row("BP", metric, "missing" if found is None else f"{found:g}", "-", "", "", "")
    ratio = value.get((ours, "BP", "blueprint_over_code"))
    target = f"≤ {BLUEPRINT_TARGET:g}x"
    if ratio is None:
        table.add_row("BP", "blueprint_over_code", "missing", "-", "", target, "missing")
        return 1
    met = ratio <= BLUEPRINT_TARGET
    table.add_row(
        "BP", "blueprint_over_code", f"{ratio:g}x", "-", "", target, "yes" if met else "NO"
    )
    return 0 if met else 1


def add_signal_wait_rows(table: Table, value: dict[tuple[str, str, str], float], ours: str) -> int:
    """W8: signals ending waits while the run's 2 s step is in flight (Legato only; DBOS has
    no counterpart here), and the target on the slowest of the 500 waits."""
    table.add_section()
    peer = "- (Legato only)"
    for metric in ("signal_to_wait_end_p50_s", "signal_to_wait_end_p99_s"):
        found = value.get((ours, "W8", metric))
        table.add_row("W8", metric, "missing" if found is None else f"{found:g}", peer, "", "", "")
    late = value.get((ours, "W8", "waits_ended_with_or_after_step"))
    shown = "missing" if late is None else f"{late:g}"
    table.add_row("W8", "waits_ended_with_or_after_step", shown, peer, "", "", "")
    worst = value.get((ours, "W8", "signal_to_wait_end_max_s"))
    target = f"max ≤ {SIGNAL_WAIT_TARGET_S:g} s"
    if worst is None:
        table.add_row("W8", "signal_to_wait_end_max_s", "missing", peer, "", target, "missing")
        return 1
    met = worst <= SIGNAL_WAIT_TARGET_S
    table.add_row(
        "W8", "signal_to_wait_end_max_s", f"{worst:g}", peer, "", target, "yes" if met else "NO"
    )
    return 0 if met else 1


def add_feed_rows(table: Table, value: dict[tuple[str, str, str], float], ours: str) -> int:
    """How many reads the client made per awaited result in W1-W3 (Legato only: the client
    waits on the change feed, so a result costs a read when the wait starts and one when the
    run ends, not one per poll)."""
    table.add_section()
    failed = 0
    target = f"≤ {FEED_READS_TARGET:g} (no polling)"
    for workload in ("W1", "W2", "W3"):
        reads = value.get((ours, workload, "client_reads_per_result"))
        if reads is None:
            table.add_row(
                workload, "client_reads_per_result", "missing", "-", "", target, "missing"
            )
            failed += 1
            continue
        met = reads <= FEED_READS_TARGET
        failed += not met
        table.add_row(
            workload,
            "client_reads_per_result",
            f"{reads:g}",
            "- (Legato only)",
            "",
            target,
            "yes" if met else "NO",
        )
    return failed


def add_scaling_rows(table: Table, value: dict[tuple[str, str, str], float]) -> int:
    """W1 throughput with 1, 2, 4 worker processes (Legato only) and the 4/1 target."""
    table.add_section()
    for n in SCALE_WORKERS:
        per_s = value.get(("legato-pg", "W1-scale", f"w1_scale_{n}_workers_per_s"))
        shown = "missing" if per_s is None else f"{per_s:g}"
        table.add_row("W1-scale", f"w1_scale_{n}_workers_per_s", shown, "-", "", "", "")
    ratio = value.get(("legato-pg", "W1-scale", "scaling_4_over_1"))
    target = f"≥ {SCALING_TARGET}x"
    if ratio is None:
        table.add_row("W1-scale", "scaling_4_over_1", "missing", "-", "", target, "missing")
        return 1
    met = ratio >= SCALING_TARGET
    table.add_row(
        "W1-scale", "scaling_4_over_1", f"{ratio:g}x", "-", "", target, "yes" if met else "NO"
    )
    return 0 if met else 1


def scaling_table(value: dict[tuple[str, str, str], float]) -> Table:
    """Where the scaling measurement's time and CPU went (best trial of each)."""
    table = Table(
        title="legato-pg W1-scale: W1 runs started up front, then N worker processes "
        "(best trial; CPU seconds in the measured window, 2 s of CPU per s of wall "
        "on a 2-core machine)"
    )
    columns = [
        ("workers", None),
        ("workflows/s", "workers_per_s"),
        ("worst trial", "worst_trial_per_s"),
        ("wall s", "wall_s"),
        ("worker CPU s", "worker_cpu_s"),
        ("PG CPU s", "pg_cpu_s"),
        ("other CPU s", "other_cpu_s"),
        ("machine busy %", "machine_cpu_busy_pct"),
        ("commits", "commits"),
        ("ops/commit", "ops_per_commit"),
        ("runs/worker", None),
    ]
    for title, _ in columns:
        table.add_column(title)
    for n in SCALE_WORKERS:

        def get(key: str, n: int = n) -> str:
            found = value.get(("legato-pg", "W1-scale", f"w1_scale_{n}_{key}"))
            return "-" if found is None else f"{found:g}"

        cells = [str(n)] + [get(key) for _, key in columns[1:-1] if key]
        cells.append(f"{get('min_runs_per_worker')}-{get('max_runs_per_worker')}")
        table.add_row(*cells)
    failed = value.get(("legato-pg", "W1-scale", "failed_trials"))
    if failed:
        table.caption = f"{failed:g} trial(s) failed (see stderr) and were left out"
    return table


def hostile_table(value: dict[tuple[str, str, str], float]) -> tuple[Table, int]:
    """Seconds and MB to refuse each hostile blueprint, and the targets (Legato only)."""
    table = Table(
        title=f"Hostile blueprints: refused within {HOSTILE_TARGET_S:g} s and "
        f"{HOSTILE_TARGET_MB:g} MB (a fresh process each; bench/hostile_input.py)"
    )
    for column in ("document", "seconds", "MB", "met"):
        table.add_column(column)
    missed = 0
    for name, has_target in HOSTILE_DOCUMENTS:
        seconds = value.get(("legato", "HOSTILE", f"{name}_s"))
        mb = value.get(("legato", "HOSTILE", f"{name}_mb"))
        if seconds is None or mb is None:
            table.add_row(name, "missing", "missing", "missing")
            missed += has_target
            continue
        met = seconds <= HOSTILE_TARGET_S and mb <= HOSTILE_TARGET_MB
        verdict = ("yes" if met else "NO") if has_target else "(no target)"
        missed += has_target and not met
        table.add_row(name, f"{seconds:g}", f"{mb:g}", verdict)
    return table, missed


def main() -> int:
    started = time.perf_counter()
    legato = [sys.executable, str(HERE / "legato_bench.py")]
    dbos = [str(DBOS_PYTHON), str(HERE / "dbos" / "run_dbos.py")]
    passes = [
        ("legato on SQLite", legato),
        ("dbos on SQLite", dbos),
        ("legato on PostgreSQL", [*legato, "--db-kind", "postgres"]),
        ("dbos on PostgreSQL", [*dbos, "--database-url", PG_SERVER]),
        ("hostile blueprints", [sys.executable, str(HERE / "hostile_input.py")]),
    ]
    rows: list[dict[str, object]] = []
    failed = 0
    for name, command in passes:
        found, ok = collect(name, command)
        rows += found
        failed += not ok
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))

    value = {(r["system"], r["workload"], r["metric"]): float(r["value"]) for r in rows}  # type: ignore[arg-type]
    console = Console(width=140)
    title = "Legato vs DBOS 3.4, both on SQLite, same machine, same run"
    table, missed = ratio_table(title, value, "legato", "dbos", TARGETS)
    failed += missed + add_blueprint_rows(table, value, "legato")
    failed += add_signal_wait_rows(table, value, "legato")
    failed += add_feed_rows(table, value, "legato")
    console.print(table)
    title = "Legato vs DBOS 3.4, both on PostgreSQL 15 (local server), same machine, same run"
    table, missed = ratio_table(title, value, "legato-pg", "dbos-pg", PG_TARGETS)
    add_blueprint_rows(table, value, "legato-pg")  # measured, no target on PostgreSQL
    failed += add_signal_wait_rows(table, value, "legato-pg")
    failed += add_feed_rows(table, value, "legato-pg")
    failed += missed + add_scaling_rows(table, value)
    console.print(table)
    console.print(scaling_table(value))
    table, missed = hostile_table(value)
    failed += missed
    console.print(table)
    print(f"results written to {out}")
    print(f"total bench time {time.perf_counter() - started:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
