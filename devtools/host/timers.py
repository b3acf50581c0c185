"""Timer triggers: 6-field NCRONTAB (seconds first) or a TimeSpan, in UTC.

WEBSITE_TIME_ZONE is ignored, as it is on Linux Consumption and Flex Consumption plans in Azure;
the host logs a warning when it is set.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable

from azure.functions.timer import TimerRequest
from croniter import croniter

from devtools.host.config import HostConfigError
from devtools.host.invoker import FunctionInvoker, InvocationResult

logger = logging.getLogger("devtools.host.timers")

# A run that starts this much later than its scheduled time is past due.
PAST_DUE_TOLERANCE = dt.timedelta(seconds=1)
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")


class Schedule:
    """Next and previous occurrences of an NCRONTAB expression or a TimeSpan interval."""

    def __init__(self, expression: str) -> None:
        self.expression = expression.strip()
        timespan = _TIMESPAN.match(self.expression)
        if timespan:
            days, hours, minutes, seconds = (int(g or 0) for g in timespan.groups())
            self.interval: dt.timedelta | None = dt.timedelta(
                days=days, hours=hours, minutes=minutes, seconds=seconds
            )
            if self.interval <= dt.timedelta(0):
                raise HostConfigError(f"timer schedule '{expression}' must be a positive interval")
            return
        self.interval = None
        if len(self.expression.split()) != 6:
            raise HostConfigError(
                f"timer schedule '{expression}' must be a 6-field NCRONTAB expression "
                "({second} {minute} {hour} {day} {month} {day-of-week}) or a TimeSpan (hh:mm:ss)"
            )
        if not croniter.is_valid(self.expression, second_at_beginning=True):
            raise HostConfigError(f"timer schedule '{expression}' is not a valid NCRONTAB expression")

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        if self.interval is not None:
            return moment + self.interval
        return croniter(self.expression, moment, second_at_beginning=True).get_next(dt.datetime)

    def latest_at_or_before(self, moment: dt.datetime) -> dt.datetime:
        if self.interval is not None:
            return moment
        return croniter(
            self.expression, moment + dt.timedelta(microseconds=1), second_at_beginning=True
        ).get_prev(dt.datetime)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


class TimerRunner:
    """One thread per timer function, so two runs of the same function never overlap."""

    def __init__(
        self,
        invoker: FunctionInvoker,
        record: Callable[..., None],
        send_outputs: Callable[[InvocationResult], None],
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.invoker = invoker
        self.schedule = Schedule(str(invoker.trigger["schedule"]))
        self.run_on_startup = bool(invoker.trigger.get("runOnStartup", False))
        self._record = record
        self._send_outputs = send_outputs
        self._now = now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"timer-{invoker.name}", daemon=True)
        self.last_run: dt.datetime | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)

    def _fire(self, scheduled: dt.datetime, next_occurrence: dt.datetime, past_due: bool) -> None:
        started = time.monotonic()
        context = self.invoker.new_context()
        request = TimerRequest(
            past_due=past_due,
            schedule_status={
                "Last": _iso(self.last_run) if self.last_run else None,
                "Next": _iso(next_occurrence),
                "LastUpdated": _iso(self._now()),
            },
            schedule={"AdjustForDST": False},
        )
        error: BaseException | None = None
        try:
            self._send_outputs(self.invoker.invoke(request, context))
        except Exception as exc:
            error = exc
        self.last_run = scheduled
        self._record(self.invoker, context, "timerTrigger", started, error, past_due=past_due)

    def _loop(self) -> None:
        now = self._now()
        if self.run_on_startup:
            self._fire(now, self.schedule.next_after(now), past_due=False)
        previous = now
        while not self._stop.is_set():
            occurrence = self.schedule.next_after(previous)
            while (remaining := (occurrence - self._now()).total_seconds()) > 0:
                if self._stop.wait(timeout=remaining):
                    return
            now = self._now()
            past_due = now - occurrence > PAST_DUE_TOLERANCE
            if past_due:
                # Missed occurrences (a long run, a suspended host) collapse into one late run.
                occurrence = max(occurrence, self.schedule.latest_at_or_before(now))
            self._fire(occurrence, self.schedule.next_after(occurrence), past_due=past_due)
            previous = occurrence
