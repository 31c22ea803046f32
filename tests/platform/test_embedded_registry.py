"""The embedded database's transaction registry (``server.platform.mongo.embedded_registry``):
a running statement of one transaction does not hold up the others, idle transactions and old
retryable-write records still go."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from secantus import transactions
from secantus.transactions import TxnState

from server.platform.mongo import REAP_EVERY_SECONDS, embedded_registry

LIFETIME = 15.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registry(clock: Clock, rolled_back: list[Any] | None = None) -> Any:
    made = embedded_registry()
    back = rolled_back if rolled_back is not None else []
    return made(lifetime_seconds=LIFETIME, time_func=clock, rollback_func=back.append)


def test_a_running_statement_does_not_hold_up_another_transaction() -> None:
    clock = Clock()
    reg = registry(clock)
    running, _ = reg.for_statement(b"a", None, 1, start=True)
    clock.now += REAP_EVERY_SECONDS + 1  # the next statement looks for idle transactions
    held, done = threading.Event(), threading.Event()

    def statement() -> None:  # as SecantusDB runs one: the transaction's mutex held
        with running.mutex:
            held.set()
            done.wait(10)

    threading.Thread(target=statement, daemon=True).start()
    assert held.wait(5)
    answered: list[Any] = []
    other = threading.Thread(
        target=lambda: answered.append(reg.for_statement(b"b", None, 1, start=True)),
        daemon=True,
    )
    other.start()
    other.join(2)  # SecantusDB's own registry waits here until the statement above ends
    try:
        assert answered, "a statement waited for another transaction's statement"
        txn, error = answered[0]
        assert error is None and txn.state is TxnState.IN_PROGRESS
        assert running.state is TxnState.IN_PROGRESS
    finally:
        done.set()


def test_an_idle_transaction_is_aborted_after_its_lifetime() -> None:
    clock, rolled_back = Clock(), []
    reg = registry(clock, rolled_back)
    idle, _ = reg.for_statement(b"idle", None, 1, start=True)
    clock.now += LIFETIME - 1
    busy, _ = reg.for_statement(b"busy", None, 1, start=True)
    assert idle.state is TxnState.IN_PROGRESS
    clock.now += 2  # idle: 16 s without a statement; busy: 2 s
    reg.for_statement(b"third", None, 1, start=True)
    assert idle.state is TxnState.ABORTED
    assert rolled_back == [idle]
    assert busy.state is TxnState.IN_PROGRESS
    # a statement of the aborted transaction is told so (and may be retried)
    txn, error = reg.for_statement(b"idle", None, 1, start=False)
    assert txn is None and error is not None and error["code"] == 251


def test_the_registry_looks_for_idle_transactions_at_most_once_a_second() -> None:
    clock = Clock()
    reg = registry(clock)
    idle, _ = reg.for_statement(b"idle", None, 1, start=True)
    clock.now += LIFETIME - 0.5
    reg.for_statement(b"other", None, 1, start=True)  # looks: not idle long enough yet
    clock.now += 1.0 - 0.01 * REAP_EVERY_SECONDS  # idle 15.5 s, but looked < 1 s ago
    reg.for_statement(b"other", None, 2, start=True)
    assert idle.state is TxnState.IN_PROGRESS
    clock.now += REAP_EVERY_SECONDS
    reg.for_statement(b"other", None, 3, start=True)
    assert idle.state is TxnState.ABORTED


def test_retryable_records_expire_and_the_oldest_go_past_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transactions, "_RETRYABLE_RECORD_MAX", 3)
    clock = Clock()
    reg = registry(clock)
    reply = {"ok": 1.0, "n": 1}
    for n in range(1, 6):
        reg.record_retryable(b"s", n, b"cmd", reply)
        clock.now += 0.1
    kept = [n for n in range(1, 6) if reg.retryable_reply(b"s", n, b"cmd") is not None]
    assert kept == [3, 4, 5]
    clock.now += transactions._RETRYABLE_RECORD_LIFETIME_SECONDS + REAP_EVERY_SECONDS
    reg.record_retryable(b"s", 6, b"cmd", reply)
    kept = [n for n in range(1, 7) if reg.retryable_reply(b"s", n, b"cmd") is not None]
    assert kept == [6]


def test_idleness_runs_from_the_end_of_a_long_statement() -> None:
    clock = Clock()
    reg = registry(clock)
    long, _ = reg.for_statement(b"long", None, 1, start=True)
    held, done = threading.Event(), threading.Event()

    def statement() -> None:  # a bulk write that runs 20 s
        with long.mutex:
            held.set()
            done.wait(10)

    worker = threading.Thread(target=statement, daemon=True)
    worker.start()
    assert held.wait(5)
    for _ in range(20):  # others' statements meanwhile, each a look for idle ones
        clock.now += 1
        reg.for_statement(b"other", None, 1, start=True)
    done.set()
    worker.join(5)
    clock.now += LIFETIME - 2  # then less than its lifetime without a statement
    reg.for_statement(b"other", None, 2, start=True)
    assert long.state is TxnState.IN_PROGRESS
    txn, error = reg.for_statement(b"long", None, 1, start=False)
    assert error is None and txn is long
