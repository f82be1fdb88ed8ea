"""How the ``legato`` command reads its command line and masks secrets: the global options
after a command move before it (and nothing else does), and passwords never print."""

from __future__ import annotations

import pytest

from legato.cli import common
from legato.cli.app import _command, hoist_global_options


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["runs", "list", "--db", "X"], ["--db", "X", "runs", "list"]),
        (["runs", "list", "--db=X", "--json"], ["--db=X", "runs", "list", "--json"]),
        (["runs", "show", "r1", "--debug"], ["--debug", "runs", "show", "r1"]),
        (["--db", "X", "runs", "list"], ["--db", "X", "runs", "list"]),
        # the value of the command's own option stays where it is, even if it looks global
        (["start", "a.py:w", "--id", "--db"], ["start", "a.py:w", "--id", "--db"]),
        (["signal", "r1", "go", "--data", "--debug"], ["signal", "r1", "go", "--data", "--debug"]),
        # nothing after -- moves
        (["runs", "show", "--", "--db"], ["runs", "show", "--", "--db"]),
        # an unknown command is left for the parser to report
        (["nosuch", "--db", "X"], ["nosuch", "--db", "X"]),
    ],
)
def test_global_options_after_the_command_move_before_it(
    args: list[str], expected: list[str]
) -> None:
    assert hoist_global_options(_command(), args) == expected


def test_masked_hides_the_password_of_the_database_and_of_any_url() -> None:
    saved = common.settings.db
    try:
        common.settings.db = "postgresql://app:hunter22@db/prod"
        text = "cannot use postgresql://app:hunter22@db/prod: hunter22 refused; mysql://u:x1@h"
        shown = common.masked(text)
        assert "hunter22" not in shown and "x1@" not in shown
        assert shown.startswith("cannot use postgresql://app:***@db/prod: *** refused")
        common.settings.db = "postgresql://app:ab@db/prod"  # too short to replace in words
        assert common.masked("a table") == "a table"
        assert common.masked("postgresql://app:ab@db/prod") == "postgresql://app:***@db/prod"
    finally:
        common.settings.db = saved
