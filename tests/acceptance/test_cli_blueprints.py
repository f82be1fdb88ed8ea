"""The real ``legato blueprint`` command: validate, publish, list and show."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import legato_cli as legato


def document(name: str = "order", version: str = "1.0.0", greeting: str = "hello") -> str:
    return f"""\
document:
  dsl: '1.0.0'
  namespace: default
  name: {name}
  version: '{version}'
do:
  - greet:
      set:
        message: {greeting}
"""


# Two mistakes: a task type that does not exist (line 7) and a jq expression that does not
# compile (line 11).
BROKEN = """\
document:
  dsl: '1.0.0'
  namespace: default
  name: broken
  version: '1.0.0'
do:
  - first:
      sett:
        a: 1
  - second:
      set:
        b: ${ .a | }
"""


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def test_validate_reports_every_problem_with_its_file_and_line(db: str, tmp_path: Path) -> None:
    good = write(tmp_path, "order.yaml", document())
    broken = write(tmp_path, "broken.yaml", BROKEN)

    ok = legato(db, "blueprint", "validate", good)
    assert ok.returncode == 0, ok.stderr
    assert f"{good}: ok" in ok.stdout

    done = legato(db, "blueprint", "validate", good, broken)
    assert done.returncode == 1
    assert f"{good}: ok" in done.stdout
    problems = [line for line in done.stderr.splitlines() if line.startswith(f"{broken}:")]
    assert len(problems) >= 2, done.stderr
    located = [re.match(rf"{re.escape(broken)}:(\d+):(\d+) (\S*): .+", p) for p in problems]
    assert all(located), problems
    lines = {int(m.group(1)) for m in located if m}
    assert any(7 <= line <= 8 for line in lines), problems  # the unknown task
    assert 12 in lines, problems  # the bad expression
    assert any(m.group(3).startswith("do[0]") for m in located if m), problems
    assert any(m.group(3).startswith("do[1]") for m in located if m), problems
    assert f"{good}:" not in done.stderr

    missing = legato(db, "blueprint", "validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "nope.yaml: no such file" in missing.stderr


def test_publish_is_idempotent_and_refuses_changed_content(db: str, tmp_path: Path) -> None:
    first = write(tmp_path, "order.yaml", document())
    published = legato(db, "blueprint", "publish", first)
    assert published.returncode == 0, published.stderr
    assert re.search(r"published default/order 1\.0\.0 \(digest [0-9a-f]{12}\)", published.stdout)

    again = legato(db, "blueprint", "publish", first)
    assert again.returncode == 0, again.stderr
    assert "already published (same content)" in again.stdout

    changed = write(tmp_path, "order-changed.yaml", document(greeting="bonjour"))
    refused = legato(db, "blueprint", "publish", changed)
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert "default/order version 1.0.0 is already published with different content" in message
    assert "immutable" in message and "1.0.1" in message

    broken = write(tmp_path, "broken.yaml", BROKEN)
    newer = write(tmp_path, "order-2.yaml", document(version="2.0.0"))
    invalid = legato(db, "blueprint", "publish", newer, broken)
    assert invalid.returncode == 1
    assert f"{broken}:" in invalid.stderr and "nothing was published" in invalid.stderr
    listed = legato(db, "blueprint", "list", "--json")
    assert [json.loads(line)["version"] for line in listed.stdout.splitlines()] == ["1.0.0"]


def test_list_and_show_published_versions(db: str, tmp_path: Path) -> None:
    empty = legato(db, "blueprint", "list")
    assert empty.returncode == 0 and "no blueprint is published" in empty.stdout

    files = [
        write(tmp_path, f"order-{v}.yaml", document(version=v, greeting=f"v{v}"))
        for v in ("1.9.0", "1.10.0", "1.2.0")
    ]
    files.append(write(tmp_path, "ship.yaml", document(name="ship")))
    assert legato(db, "blueprint", "publish", *files).returncode == 0

    table = legato(db, "blueprint", "list")
    assert table.returncode == 0, table.stderr
    for column in ("namespace", "name", "version", "digest", "published"):
        assert column in table.stdout
    rows = [line for line in table.stdout.splitlines() if "default" in line]
    versions = [re.findall(r"\d+\.\d+\.\d+", r)[0] for r in rows if " order " in r]
    assert versions == ["1.2.0", "1.9.0", "1.10.0"]
    records = [
        json.loads(line) for line in legato(db, "blueprint", "list", "--json").stdout.splitlines()
    ]
    assert {(r["name"], r["version"]) for r in records} == {
        ("order", "1.2.0"),
        ("order", "1.9.0"),
        ("order", "1.10.0"),
        ("ship", "1.0.0"),
    }
    assert all("source" not in r and len(r["digest"]) >= 12 for r in records)

    latest = legato(db, "blueprint", "show", "order")
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout == document(version="1.10.0", greeting="v1.10.0")  # 1.10 > 1.9
    pinned = legato(db, "blueprint", "show", "default/order:1.9.0", "--json")
    record = json.loads(pinned.stdout)
    assert record["version"] == "1.9.0" and record["source"] == document("order", "1.9.0", "v1.9.0")
    assert record["namespace"] == "default" and record["published_at"] > 0

    unknown_version = legato(db, "blueprint", "show", "order:3.0.0")
    assert unknown_version.returncode == 1
    assert "published versions: 1.2.0, 1.9.0, 1.10.0" in " ".join(unknown_version.stderr.split())
    unknown = legato(db, "blueprint", "show", "invoice")
    assert unknown.returncode == 1 and "no blueprint named 'invoice'" in unknown.stderr
    malformed = legato(db, "blueprint", "show", "order:v1")
    assert malformed.returncode == 1 and "not a semantic version" in malformed.stderr


TOTAL = """\
document:
  dsl: '1.0.0'
  namespace: shop
  name: total
  version: '1.0.0'
do:
  - total:
      set:
        total: ${ .price * .quantity }
"""

OUT_OF_STOCK = """\
document:
  dsl: '1.0.0'
  namespace: shop
  name: reserve
  version: '1.0.0'
do:
  - reserve:
      raise:
        error:
          type: https://example.com/errors/out-of-stock
          status: 409
          title: Out of stock
          detail: no widgets left
"""


def test_run_waits_for_the_output_or_reports_the_error(db: str, tmp_path: Path) -> None:
    files = [write(tmp_path, "total.yaml", TOTAL), write(tmp_path, "reserve.yaml", OUT_OF_STOCK)]
    assert legato(db, "blueprint", "publish", *files).returncode == 0
    worker = subprocess.Popen(  # no --app: a worker without user code serves blueprints
        [sys.executable, "-m", "legato", "worker"],
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        price = '{"price": 2, "quantity": 3}'
        done = legato(db, "blueprint", "run", "total", "--input", price, "--id", "t1")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"total": 6}
        assert "run t1 of total started" in done.stderr
        shown = json.loads(legato(db, "runs", "show", "t1", "--json").stdout)
        assert shown["workflow"] == "blueprint:shop/total" and shown["version"] == "1.0.0"

        failed = legato(db, "blueprint", "run", "shop/reserve:1.0.0", "--timeout", "60")
        assert worker.poll() is None, worker.communicate()[1]  # the worker is still serving
        assert failed.returncode == 1
        message = " ".join(failed.stderr.split())
        assert "failed: Out of stock (status 409) at /do/0/reserve: no widgets left" in message

        started = legato(db, "blueprint", "run", "total", "--no-wait", "--input", price)
        assert started.returncode == 0, started.stderr
        assert re.fullmatch(r"[0-9a-f]{32}", started.stdout.strip())
    finally:
        worker.terminate()
        worker.communicate(timeout=30)

    emitted = legato(
        db, "events", "emit", "--type", "com.example.order", "--source", "/shop", "--data", "{}"
    )
    assert emitted.returncode == 0, emitted.stderr
    assert "(com.example.order from /shop) emitted" in emitted.stdout
    missing = legato(db, "blueprint", "run", "nothing", "--no-wait")
    assert missing.returncode == 1 and "no blueprint named 'nothing'" in missing.stderr
