"""No test asserts on a measured duration: on a loaded machine it fails for no fault of the code.

Tests assert order and counts, and wait with a generous deadline that only guards against a hang;
latency figures belong in bench/. This check reads every test module's syntax tree and refuses an
`assert` that compares a duration taken from the wall clock: a subtraction involving `time.monotonic()`,
`time.perf_counter()`, `time.time()` or `datetime.now()`, directly or through a variable assigned one in
the same function. An injected clock (`clock.now()`, `ManualClock`) is not the wall clock and is fine;
so is comparing two wall-clock stamps for order (`sent_at <= stamped <= answered_at`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
_TIME_FUNCTIONS = frozenset(
    {"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time", "time_ns", "process_time"}
)


def _reads_the_wall_clock(node: ast.AST) -> bool:
    """`time.monotonic()` and friends, `perf_counter()` imported bare, `datetime.now()` / `utcnow()`."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute):
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id == "time" and func.attr in _TIME_FUNCTIONS:
            return True
        names_datetime = (isinstance(owner, ast.Name) and owner.id == "datetime") or (
            isinstance(owner, ast.Attribute) and owner.attr == "datetime"
        )
        return names_datetime and func.attr in ("now", "utcnow")
    return isinstance(func, ast.Name) and func.id in ("monotonic", "perf_counter")


def _mentions(node: ast.AST, clocked: set[str]) -> bool:
    return any(
        _reads_the_wall_clock(child) or (isinstance(child, ast.Name) and child.id in clocked)
        for child in ast.walk(node)
    )


def _is_shift(node: ast.AST) -> bool:
    """A fixed amount: a number, `timedelta(...)`, or arithmetic of those (`5 * 86400`)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float)
    if isinstance(node, ast.BinOp):
        return _is_shift(node.left) and _is_shift(node.right)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name == "timedelta"
    return False


def _is_reading(node: ast.AST) -> bool:
    """A wall-clock reading, possibly shifted: `time.monotonic()`, `time.monotonic() + 60`."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        return (_is_reading(node.left) and _is_shift(node.right)) or (
            isinstance(node.op, ast.Add) and _is_shift(node.left) and _is_reading(node.right)
        )
    return _reads_the_wall_clock(node)


def _is_duration(node: ast.AST, clocked: set[str], durations: set[str]) -> bool:
    """Holds a difference between a wall-clock reading and another time (not a fixed shift of it)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and child.id in durations:
            return True
        if not (isinstance(child, ast.BinOp) and isinstance(child.op, ast.Sub)):
            continue
        if (_mentions(child.left, clocked) or _mentions(child.right, clocked)) and not (
            _is_shift(child.left) or _is_shift(child.right)
        ):
            return True
    return False


def timing_assertions(source: str) -> list[int]:
    """Line numbers of asserts that compare a wall-clock duration."""
    found: set[int] = set()
    functions = [
        n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    for function in functions:
        clocked: set[str] = set()  # names holding a wall-clock reading
        durations: set[str] = set()  # names holding a difference of wall-clock readings
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                if _is_reading(node.value):
                    clocked.add(node.targets[0].id)
                elif _is_duration(node.value, clocked, durations):
                    durations.add(node.targets[0].id)
        for node in ast.walk(function):
            if isinstance(node, ast.Assert):
                compares = [c for c in ast.walk(node.test) if isinstance(c, ast.Compare)]
                if any(_is_duration(c, clocked, durations) for c in compares):
                    found.add(node.lineno)
    return sorted(found)


def test_the_check_spots_a_measured_duration_and_spares_order() -> None:
    spotted = """
import time, datetime as dt
def test_a():
    started = time.monotonic()
    run()
    assert time.monotonic() - started < 1.9
def test_b():
    started = time.perf_counter()
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0
def test_c(received):
    assert abs((dt.datetime.now(dt.UTC) - received).total_seconds()) < 60
"""
    spared = """
import time
def test_d(entry, clock):
    sent_at = time.time()
    answered_at = time.time()
    assert sent_at <= entry["real_time"] <= answered_at
    assert clock.now() - entry["at"] == 5
    deadline = time.monotonic() + 60
    assert wait(deadline)
"""
    assert timing_assertions(spotted) == [6, 10, 12]
    assert timing_assertions(spared) == []


@pytest.mark.parametrize("path", sorted(TESTS.rglob("test_*.py")), ids=lambda p: str(p.relative_to(TESTS)))
def test_no_test_asserts_on_a_wall_clock_duration(path: Path) -> None:
    lines = timing_assertions(path.read_text(encoding="utf-8"))
    assert lines == [], (
        f"{path.name} asserts on a measured duration at lines {lines}: assert order and counts"
    )
