"""The Health page (/health) against the local stack: what it shows is what GET /api/status says; a Reader
sees no Replay or Run button; an Admin replays a poison message with a confirmation (the message is on its
queue again: this stack's host runs HTTP functions only, so nothing consumes it) and runs the probe."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.storage.queue import QueueClient
from playwright.sync_api import expect

from shared.platform.clients import get_clients
from shared.platform.resources import Queues, poison_queue
from tests.browser.health_data import Seeded, seed_health, status_queue
from tests.browser.helpers import (
    ADMIN,
    READER,
    TID,
    UI_TIMEOUT_MS,
    Console,
    SignedIn,
    run_axe,
    screenshot,
    tid,
)

pytestmark = pytest.mark.browser

QUEUE = Queues.NOTIFY  # its worker is off in this stack, as every queue worker is


@pytest.fixture
def seeded(console: Console) -> Seeded:
    return seed_health(console)


def raw_queue(name: str) -> QueueClient:
    """Message text as stored (the host's base64 included): what the replay copies."""
    return get_clients().queue_service.get_queue_client(name)


@pytest.fixture
def poison_message() -> Iterator[str]:
    """A message of its own on `notify-poison`; removed from wherever it ends up."""
    content = f"browser replay {uuid.uuid4().hex}"
    raw_queue(poison_queue(QUEUE)).send_message(content)
    yield content
    for name in (QUEUE, poison_queue(QUEUE)):
        queue = raw_queue(name)
        for message in queue.receive_messages(messages_per_page=32, max_messages=200, visibility_timeout=5):
            if message.content == content:
                queue.delete_message(message)


def open_health(signed_in_page: Callable[..., SignedIn], roles: list[str]) -> SignedIn:
    signed = signed_in_page(roles, "/health")
    expect(tid(signed.page, TID.HEALTH_REFRESHED)).not_to_have_attribute("data-at", "", timeout=UI_TIMEOUT_MS)
    return signed


def depths(signed: SignedIn, queue: str) -> tuple[str, str]:
    row = tid(signed.page, TID.QUEUE_ROW, queue=queue)
    return row.get_by_test_id(TID.QUEUE_DEPTH).inner_text(), row.get_by_test_id(TID.POISON_DEPTH).inner_text()


def expect_depths(signed: SignedIn, queue: str, depth: int, poison: int) -> None:
    row = tid(signed.page, TID.QUEUE_ROW, queue=queue)
    expect(row.get_by_test_id(TID.QUEUE_DEPTH)).to_have_text(str(depth), timeout=UI_TIMEOUT_MS)
    expect(row.get_by_test_id(TID.POISON_DEPTH)).to_have_text(str(poison), timeout=UI_TIMEOUT_MS)


def assert_matches_status(signed: SignedIn, status: dict[str, Any], seeded: Seeded) -> None:
    page = signed.page
    for source in status["sources"]:
        row = tid(page, TID.SOURCE_ROW, source=source["source"])
        expect(row).to_have_attribute("data-stale", str(source["stale"]).lower())
        expect(row.get_by_test_id(TID.SOURCE_QUARANTINED)).to_have_text(str(source["quarantined"]))
    expect(tid(page, TID.SOURCE_ROW)).to_have_count(len(status["sources"]))
    for queue in (q for q in status["queues"] if not q["poison"]):
        poison = status_queue(status, poison_queue(queue["name"]))
        assert depths(signed, queue["name"]) == (str(queue["depth"]), str(poison["depth"]))
    [scope] = [p for p in status["probe"] if p["scope"] == seeded.scope]
    row = tid(page, TID.PROBE_ROW, scope=seeded.scope)
    expect(row.get_by_test_id(TID.PROBE_PHASE)).to_have_text(scope["phase"])
    expect(row.get_by_test_id(TID.PROBE_LAST_TRIGGER)).to_contain_text(scope["last_trigger_id"])
    link = row.get_by_test_id(TID.PROBE_RUN_LINK)
    expect(link).to_have_attribute("href", scope["last_run"]["run_url"])
    expect(link).to_have_text(f"Run {scope['last_run']['run_id']}")


def test_a_reader_sees_the_status_without_replay_or_run_and_the_page_refreshes_itself(
    context: Any, signed_in_page: Callable[..., SignedIn], seeded: Seeded, poison_message: str
) -> None:
    context.clock.install()  # the page's timers, moved on below instead of waited for
    signed = open_health(signed_in_page, [READER])
    page = signed.page
    status = signed.api_json("/api/status")

    sources = {s["source"]: s for s in status["sources"]}
    assert sources["entra_audit"]["stale"] is False
    assert sources["entra_audit"]["quarantined"] == 2
    assert sources["intune_audit"]["stale"] is True
    assert sources["intune_audit"]["last_error"] == "HTTPError: 503 Service Unavailable"
    assert status_queue(status, poison_queue(QUEUE))["depth"] >= 1
    [scope] = [p for p in status["probe"] if p["scope"] == seeded.scope]
    assert scope["last_trigger_id"] == seeded.trigger_id
    assert scope["last_run"] == {"run_id": seeded.run.run_id, "run_url": seeded.run.url, "state": "queued"}
    assert_matches_status(signed, status, seeded)
    expect(tid(page, TID.SOURCE_ROW, source="intune_audit")).to_contain_text(
        "HTTPError: 503 Service Unavailable"
    )
    expect(tid(page, TID.SOURCE_ROW, source="entra_audit").get_by_test_id(TID.SOURCE_LAG)).to_have_text(
        re.compile(r"^\d+(\.\d+)? (s|min)$")
    )
    # A Reader: no Replay, even on a poison queue with messages, and no "Run the probe now".
    expect(tid(page, TID.REPLAY)).to_have_count(0)
    expect(tid(page, TID.PROBE_RUN)).to_have_count(0)
    assert run_axe(page) == []
    screenshot(page, "health-reader")

    # Every 30 s while visible: the clock moved on, the page asks again (one request at a time).
    first = tid(page, TID.HEALTH_REFRESHED).get_attribute("data-at")
    calls = sum(1 for r in signed.api_requests if r.url.endswith("/api/status"))
    page.clock.fast_forward(31_000)
    expect(tid(page, TID.HEALTH_REFRESHED)).not_to_have_attribute(
        "data-at", first or "", timeout=UI_TIMEOUT_MS
    )
    assert sum(1 for r in signed.api_requests if r.url.endswith("/api/status")) == calls + 1
    assert page.evaluate("() => document.visibilityState") == "visible"


def test_an_admin_replays_a_poison_message_after_confirming(
    signed_in_page: Callable[..., SignedIn], seeded: Seeded, poison_message: str
) -> None:
    signed = open_health(signed_in_page, [ADMIN])
    page = signed.page
    status = signed.api_json("/api/status")
    depth = status_queue(status, QUEUE)["depth"]
    poison = status_queue(status, poison_queue(QUEUE))["depth"]
    assert poison >= 1
    expect_depths(signed, QUEUE, depth, poison)
    # Replay shows on the queues whose poison queue holds messages, and only there.
    stuck = {q["name"][: -len("-poison")] for q in status["queues"] if q["poison"] and q["depth"]}
    expect(tid(page, TID.REPLAY)).to_have_count(len(stuck))

    tid(page, TID.QUEUE_ROW, queue=QUEUE).get_by_test_id(TID.REPLAY).click()
    dialog = tid(page, TID.REPLAY_DIALOG)
    expect(dialog).to_be_visible()
    noun = "1 message" if poison == 1 else f"{poison} messages"
    expect(tid(page, TID.REPLAY_QUESTION)).to_contain_text(f"Move {noun} from {QUEUE}-poison back to {QUEUE}")
    assert run_axe(page) == []
    screenshot(page, "health-replay-confirm")
    tid(page, TID.REPLAY_CANCEL).click()  # cancelling moves nothing
    expect(dialog).to_have_count(0)
    expect_depths(signed, QUEUE, depth, poison)

    tid(page, TID.QUEUE_ROW, queue=QUEUE).get_by_test_id(TID.REPLAY).click()
    tid(page, TID.REPLAY_CONFIRM).click()

    expect(tid(page, TID.REPLAY_RESULT)).to_have_text(
        f"Replayed {poison} from {QUEUE}-poison; 0 remain.", timeout=UI_TIMEOUT_MS
    )
    expect_depths(signed, QUEUE, depth + poison, 0)
    expect(tid(page, TID.QUEUE_ROW, queue=QUEUE).get_by_test_id(TID.REPLAY)).to_have_count(0)
    after = signed.api_json("/api/status")
    assert (status_queue(after, QUEUE)["depth"], status_queue(after, poison_queue(QUEUE))["depth"]) == (
        depth + poison,
        0,
    )
    on_queue = [m.content for m in raw_queue(QUEUE).peek_messages(max_messages=32)]
    assert poison_message in on_queue
    audit = signed.api_json("/api/audit", {"action": "queue.replay", "target_id": QUEUE})["items"]
    assert audit[0]["after"] == {"replayed": poison, "remaining": 0}
    assert audit[0]["before"] == {"max": poison}
    screenshot(page, "health-replayed")


def test_an_admin_runs_the_probe_now(signed_in_page: Callable[..., SignedIn], seeded: Seeded) -> None:
    signed = open_health(signed_in_page, [ADMIN])
    page = signed.page
    row = tid(page, TID.PROBE_ROW, scope=seeded.scope)
    before = {p["scope"]: p for p in signed.api_json("/api/status")["probe"]}[seeded.scope]
    expect(row.get_by_test_id(TID.PROBE_PHASE)).to_have_text(before["phase"])

    with page.expect_response(lambda r: r.url.endswith("/api/probe/run")) as answer:
        tid(page, TID.PROBE_RUN).click()
    assert answer.value.status == 200
    report = answer.value.json()

    expect(tid(page, TID.PROBE_RUN_RESULT)).to_contain_text(f"Run {report['run_id']}", timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.PROBE_RUN_RESULT)).to_contain_text("0 source(s) polled, 0 failed")
    [stepped] = [p for p in report["probe"] if p["scope"] == seeded.scope]
    # The seeded cooldown ran out two hours ago: the run moves the scope to idle, and the page shows it.
    assert stepped["phase"] == "idle"
    expect(row.get_by_test_id(TID.PROBE_PHASE)).to_have_text("idle", timeout=UI_TIMEOUT_MS)
    expect(row.get_by_test_id(TID.PROBE_LAST_TRIGGER)).to_contain_text(seeded.trigger_id)
    expect(row.get_by_test_id(TID.PROBE_RUN_LINK)).to_have_attribute("href", seeded.run.url or "")
    audit = signed.api_json("/api/audit", {"action": "probe.run", "target_id": report["run_id"]})["items"]
    assert len(audit) == 1
    assert audit[0]["after"]["probe_scopes"] == 1
    screenshot(page, "health-probe-run")
