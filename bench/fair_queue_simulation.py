"""A SIMULATION, not a measurement: quiet tenants' queue wait behind one tenant's backlog, with and without
`tenant=` (SQS fair queues) and with and without jobstack's per-tenant concurrency gate.

SQS's reordering happens inside AWS; no emulator here models it, so this models the documented rule instead
(SQS Developer Guide, "How Amazon SQS fair queues work"):

- tenants are MessageGroupIds; a message without one is a tenant of its own (so without `tenant=` no tenant
  can stand out, and the queue behaves as a plain one);
- a tenant is a noisy neighbour while it holds more than 10% of the queue's in-flight messages and at least 30
  of its own (`is_noisy`); the guide's second measure, a share of recent processing time, is not modelled
  (every job here takes the same time, so it would flag the same tenant);
- while a quiet tenant has a message waiting, consumers get quiet tenants' messages first; among noisy tenants,
  the one with the fewest in flight first. Noisy messages are delayed, never dropped.

A plain queue is modelled as oldest-first: the most favourable order a standard queue (best-effort ordering)
could give the quiet tenants' messages published after the backlog. jobstack's gate (`tenant_concurrency`,
db/claiming/tenant_gate.py) is modelled as the worker does it: a message of a tenant at its limit is returned
unclaimed, invisible for `min(2 ** (receives - 1), 30)` seconds (worker/processing.py's THROTTLED backoff), the
consumer spending `claim_seconds` on it.

    python -m bench.fair_queue_simulation [--backlog 2000] [--quiet 20] [--consumers 4 100]
"""

from __future__ import annotations

import argparse
import heapq
import statistics
from collections import deque
from dataclasses import dataclass, field

from bench.report import write_section

#: The documented thresholds: more than this share of in-flight messages, and at least this many.
NOISY_SHARE, NOISY_MINIMUM = 0.10, 30
#: worker/processing.py: THROTTLED_MAX_SECONDS, the cap of a turned-away message's backoff.
THROTTLED_MAX_SECONDS = 30


def is_noisy(in_flight_of_tenant: int, in_flight_total: int) -> bool:
    """The concurrency-share rule: more than 10% of in-flight messages and at least 30 of its own."""
    return in_flight_of_tenant >= NOISY_MINIMUM and in_flight_of_tenant > NOISY_SHARE * in_flight_total


@dataclass
class Message:
    tenant: str
    published: float
    receives: int = 0


@dataclass
class Result:
    quiet_waits: list[float]  # seconds from publish to start, the quiet tenants' jobs
    backlog_done: float  # when the last backlog job finished
    receives: int  # receives in all (a throttled message is received again)
    quiet_all_started: float  # when the last quiet job started
    backlog_done_by_then: int  # backlog jobs finished by then

    def wait(self, p: int) -> float:
        if p == 100:
            return max(self.quiet_waits)
        return statistics.quantiles(self.quiet_waits, n=100, method="inclusive")[p - 1]


@dataclass
class _Queue:
    """The queue's visible messages per tenant (each oldest first) and the ones invisible until a time."""

    visible: dict[str, deque[tuple[float, int, Message]]] = field(default_factory=dict)
    hidden: list[tuple[float, int, Message]] = field(default_factory=list)
    seq: int = 0

    def put(self, message: Message, at: float) -> None:
        self.seq += 1
        self.visible.setdefault(message.tenant, deque()).append((at, self.seq, message))

    def hide(self, message: Message, until: float) -> None:
        self.seq += 1
        heapq.heappush(self.hidden, (until, self.seq, message))

    def reveal(self, now: float) -> None:
        while self.hidden and self.hidden[0][0] <= now:
            until, _, message = heapq.heappop(self.hidden)
            self.put(message, until)

    def next_reveal(self) -> float | None:
        return self.hidden[0][0] if self.hidden else None

    def take(self, fair: bool, in_flight: dict[str, int]) -> Message | None:
        heads = {t: q[0] for t, q in self.visible.items() if q}
        if not heads:
            return None
        chosen = heads
        if fair:
            total = sum(in_flight.values())
            quiet = {t: h for t, h in heads.items() if not is_noisy(in_flight.get(t, 0), total)}
            if quiet:
                chosen = quiet
            else:  # only noisy tenants wait: the one with the fewest in flight first
                fewest = min(in_flight.get(t, 0) for t in heads)
                chosen = {t: h for t, h in heads.items() if in_flight.get(t, 0) == fewest}
        tenant = min(chosen, key=lambda t: chosen[t][:2])
        return self.visible[tenant].popleft()[2]


def simulate(
    *,
    consumers: int,
    backlog: int,
    quiet_tenants: int,
    quiet_jobs: int,
    fair: bool,
    gate: int | None,
    park: bool = True,
    job_seconds: float = 1.0,
    claim_seconds: float = 0.02,
) -> Result:
    """Tenant A publishes `backlog` jobs at t=0, then each quiet tenant `quiet_jobs` at t=0.001 (behind A's);
    `consumers` take one message at a time. `gate`: a tenant's running jobs at most (None: no gate). `park`: a
    job past the gate waits in the database and is released, as a new message, when its tenant's job ends
    (jobstack's way, db/tenant_turns.py); False: returned through the queue with the THROTTLED backoff."""
    queue = _Queue()
    for _ in range(backlog):
        queue.put(Message("A", 0.0), 0.0)
    for i in range(quiet_tenants):
        for _ in range(quiet_jobs):
            queue.put(Message(f"Q{i}", 0.001), 0.001)
    running: dict[str, int] = {}
    parked: dict[str, deque[Message]] = {}
    free: list[tuple[float, int, str | None]] = [(0.001, slot, None) for slot in range(consumers)]  # (t, slot, ended)
    heapq.heapify(free)
    quiet_waits: list[float] = []
    receives = 0
    finished_a: list[float] = []
    last = 0.0
    while free:
        now, slot, ended = heapq.heappop(free)
        if ended is not None:
            running[ended] -= 1
            if ended == "A":
                finished_a.append(now)
            waiting = parked.get(ended)
            if waiting:  # its slot is free: the oldest parked job goes back to the queue, a new message
                released = waiting.popleft()
                released.receives = 0
                queue.put(released, now)
        queue.reveal(now)
        message = queue.take(fair, running)
        if message is None:
            after = queue.next_reveal()
            if after is not None:
                heapq.heappush(free, (after, slot, None))
            continue  # nothing left for this consumer: it stops
        receives += 1
        message.receives += 1
        if gate is not None and running.get(message.tenant, 0) >= gate:
            if park:
                parked.setdefault(message.tenant, deque()).append(message)
            else:
                backoff = min(2 ** (message.receives - 1), THROTTLED_MAX_SECONDS)
                queue.hide(message, now + claim_seconds + backoff)
            heapq.heappush(free, (now + claim_seconds, slot, None))
            continue
        running[message.tenant] = running.get(message.tenant, 0) + 1
        if message.tenant != "A":
            quiet_waits.append(now - message.published)
            last = max(last, now)
        heapq.heappush(free, (now + claim_seconds + job_seconds, slot, message.tenant))
    done_by_then = sum(1 for t in finished_a if t <= last)
    return Result(quiet_waits, max(finished_a, default=0.0), receives, last, done_by_then)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=2_000)
    parser.add_argument("--quiet", type=int, default=20, help="jobs of each of the 4 quiet tenants")
    parser.add_argument("--consumers", type=int, nargs="+", default=[4, 100])
    args = parser.parse_args()
    rows = []
    for consumers in args.consumers:
        gate = max(1, consumers // 2)  # half the consumers: A still gets half, the rest stay for the others
        for label, fair, limit, park in (
            ("without `tenant=`", False, None, False),
            ("`tenant=` (SQS fair queue)", True, None, False),
            (f"`tenant=` + `tenant_concurrency={gate}`, turned-away jobs returned", True, gate, False),
            (f"`tenant=` + `tenant_concurrency={gate}`, parked (jobstack)", True, gate, True),
        ):
            r = simulate(consumers=consumers, backlog=args.backlog, quiet_tenants=4, quiet_jobs=args.quiet, fair=fair,
                         gate=limit, park=park)  # fmt: skip
            rows.append(
                f"| {consumers} | {label} | {r.wait(50):,.1f} | {r.wait(95):,.1f} | {r.wait(100):,.1f} | "
                f"{r.backlog_done_by_then:,} of {args.backlog:,} | {r.backlog_done:,.0f} | {r.receives:,} |"
            )
    body = f"""
**A simulation, not a measurement.** SQS reorders a fair queue inside AWS, and no emulator models it; this
models the rule the SQS Developer Guide documents ("How Amazon SQS fair queues work": a tenant holding more than
10% of in-flight messages and at least 30 of its own is a noisy neighbour, and quiet tenants' messages go first
while it is). Tenant A publishes {args.backlog:,} jobs, then 4 quiet tenants {args.quiet} each; every job takes
1 s; each consumer takes one message at a time (a plain queue modelled oldest-first, the best order a standard
queue could give them; a Lambda event source mapping's batches and poller scaling are not modelled). The gate
is `tenant_concurrency` set to half the consumers, two ways: a job past it returned through the queue, invisible
for the THROTTLED backoff (1, 2, 4, ... 30 s), as concurrency keys are; or parked in the database and released
as a new message when its tenant's job ends, as jobstack does (db/tenant_turns.py).

| consumers | publishing | quiet wait p50 s | p95 s | max s | A done at last quiet start | A done at s | receives |
|---:|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

What it shows: SQS's fair queue helps only once A can hold 30 messages in flight: with 4 consumers (a local
run, or a function with maximum concurrency 4) it never triggers, and the quiet tenants wait behind the
whole backlog. A tenant limit works at any concurrency, because the database counts A's running jobs; but
returned through the queue, A's turned-away messages are received again and again (the receives column) and
back off, and the quiet tenants' own jobs past their limit back off too. Parked, each turned-away job is
received once more when released, A's backlog drains at its limit without gaps, and the quiet tenants start
after one pass over A's messages. The limit is every tenant's: a quiet tenant runs at most its limit at once.
"""
    command = (
        f"python -m bench.fair_queue_simulation --backlog {args.backlog} --quiet {args.quiet} --consumers "
        + " ".join(map(str, args.consumers))
    )
    write_section("fair queue simulation", command, body)
    print(body)


if __name__ == "__main__":
    main()
