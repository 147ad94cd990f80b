"""``tests/RELIABILITY.md`` names only tests that exist, and every fault scenario test is in it."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
NOTE = TESTS / "RELIABILITY.md"
NODE = re.compile(r"`([\w/]+\.py)::(\w+)`")
SCENARIO_FILES = (
    "session/test_scenarios.py",
    "session/test_fault_scenarios.py",
    "pool/test_failover.py",
)


def _named() -> set[tuple[str, str]]:
    return set(NODE.findall(NOTE.read_text(encoding="utf-8")))


def test_every_test_the_note_names_exists() -> None:
    named = _named()
    assert len(named) > 40
    missing = [
        f"{path}::{name}"
        for path, name in sorted(named)
        if not re.search(rf"^(async )?def {name}\(", (TESTS / path).read_text(), re.MULTILINE)
    ]
    assert missing == []


def test_every_scenario_test_is_in_the_note() -> None:
    named = _named()
    for path in SCENARIO_FILES:
        source = (TESTS / path).read_text(encoding="utf-8")
        tests = re.findall(r"^(?:async )?def (test_\w+)\(", source, re.MULTILINE)
        assert [t for t in tests if (path, t) not in named] == [], path
