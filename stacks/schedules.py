"""Periodic jobs declared per environment in cdk.json (`"schedules": {NAME: {...}}`): their validation and
their next fire times.

Each becomes an EventBridge Scheduler schedule (stacks/periodic_jobs.py) that invokes a small entry point
(worker/scheduled.py; the code is worker/periodic.py), which publishes the job through `publish()` with the
idempotency key `schedule:NAME:<scheduled time>`: a duplicate fire, or a retried invocation, makes exactly one job.

Expressions are EventBridge Scheduler's: `cron(minutes hours day-of-month month day-of-week year)` with `?`
in one of the day fields, or `rate(N minute|minutes|hour|hours|day|days)`, in `timezone` (IANA name).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,48}$")
_RATE = re.compile(r"^(\d+) (minute|minutes|hour|hours|day|days)$")
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTH_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC"
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES.split(), start=1)}
#: (name, lowest, highest, names) of each cron field, in order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2199, {}),
)


class ScheduleError(ValueError):
    """One line: which schedule, which field, what is wrong."""


@dataclass(frozen=True)
class Schedule:
    name: str
    expression: str  # as EventBridge Scheduler takes it: cron(...) or rate(...)
    timezone: str
    type: str
    payload: tuple[tuple[str, Any], ...]  # frozen for the settings' hashability; dict(payload) to use it

    @property
    def payload_dict(self) -> dict[str, Any]:
        return dict(self.payload)

    def next_fires(self, after: datetime, count: int = 3) -> list[datetime]:
        """The next `count` fire times after `after` (timezone-aware), in the schedule's time zone; a rate
        schedule has no fixed phase (it counts from its creation), so it has none."""
        if self.expression.startswith("rate("):
            return []
        fields = _parse_cron(self.name, self.expression[5:-1])
        return list(_fires(fields, after.astimezone(ZoneInfo(self.timezone)), count))


def parse_schedules(where: str, value: Any) -> tuple[Schedule, ...]:
    """cdk.json's `schedules` object, validated: one line naming the schedule and what to fix."""
    if not isinstance(value, Mapping):
        raise ScheduleError(f"{where}: schedules must be an object of NAME: {{cron|rate, timezone, type, payload}}")
    return tuple(_one(where, name, spec) for name, spec in sorted(value.items()))


def _one(where: str, name: str, spec: Any) -> Schedule:
    here = f"{where}: schedule {name!r}"
    if not _NAME.match(name):
        raise ScheduleError(f"{here}: names are 1-48 letters, digits, '.', '_' or '-'")
    if not isinstance(spec, Mapping):
        raise ScheduleError(f"{here} must be an object with cron or rate, timezone, type and payload")
    unknown = set(spec) - {"cron", "rate", "timezone", "type", "payload"}
    if unknown:
        raise ScheduleError(f"{here}: unknown key(s) {', '.join(sorted(unknown))}")
    if ("cron" in spec) == ("rate" in spec):
        raise ScheduleError(f"{here} needs exactly one of cron and rate")
    if "cron" in spec:
        cron = str(spec["cron"]).strip()
        _parse_cron(here, cron)
        expression = f"cron({cron})"
    else:
        rate = str(spec["rate"]).strip()
        found = _RATE.match(rate)
        if not found or int(found.group(1)) < 1 or (int(found.group(1)) == 1) != (not found.group(2).endswith("s")):
            raise ScheduleError(f"{here}: rate must be like '1 hour' or '15 minutes', got {rate!r}")
        expression = f"rate({rate})"
    timezone = spec.get("timezone", "UTC")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{here}: timezone {timezone!r} is not an IANA time zone like Europe/Paris") from None
    job_type = spec.get("type")
    if not isinstance(job_type, str) or not job_type:
        raise ScheduleError(f"{here} needs the job type to publish (type)")
    payload = spec.get("payload", {})
    if not isinstance(payload, Mapping):
        raise ScheduleError(f"{here}: payload must be an object")
    return Schedule(name, expression, str(timezone), job_type, tuple(sorted(payload.items())))


def _parse_cron(where: str, cron: str) -> list[set[int] | None]:
    """The six fields as sets of allowed values (None for `?`)."""
    parts = cron.split()
    if len(parts) != 6:
        raise ScheduleError(
            f"{where}: cron needs 6 fields (minutes hours day-of-month month day-of-week year), got {cron!r}"
        )
    if (parts[2] == "?") == (parts[4] == "?"):
        raise ScheduleError(f"{where}: cron needs '?' in exactly one of day-of-month and day-of-week, got {cron!r}")
    return [None if part == "?" else _field(where, part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]


def _field(where: str, part: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in part.upper().split(","):
        base, _, step_text = item.partition("/")
        step = _number(where, name, step_text, {}) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = _number(where, name, first, names), _number(where, name, last, names)
        else:
            start = _number(where, name, base, names)
            end = high if step_text else start
        if not low <= start <= end <= high or step < 1:
            raise ScheduleError(f"{where}: cron {name} {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _number(where: str, name: str, text: str, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ScheduleError(f"{where}: cron {name} {text!r} is not supported here (use numbers, names, * , - /)")
    return int(text)


def _fires(fields: list[set[int] | None], after: datetime, count: int) -> Iterator[datetime]:
    minutes, hours, days, months, weekdays, years = fields
    day = after.replace(hour=0, minute=0, second=0, microsecond=0)
    found = 0
    for _ in range(366 * 5):
        weekday = day.isoweekday() % 7 + 1  # EventBridge: SUN=1 .. SAT=7
        if (
            (years is None or day.year in years)
            and (months is None or day.month in months)
            and (days is None or day.day in days)
            and (weekdays is None or weekday in weekdays)
        ):
            for hour in sorted(hours or ()):
                for minute in sorted(minutes or ()):
                    fire = day.replace(hour=hour, minute=minute)
                    if fire > after:
                        yield fire
                        found += 1
                        if found == count:
                            return
        day = (day + timedelta(days=1)).replace(hour=0, minute=0)
