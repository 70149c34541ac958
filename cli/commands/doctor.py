"""`jobstack doctor --env ENV`: what an operator checks before and after a deploy, one line per check.

Each check answers one question with ✓ or ✗ and, when ✗, what to do. Nothing here changes anything, and
nothing prints a secret: the secret is parsed, never shown. Checks that need something an earlier one
could not provide (the database without a readable secret, say) say so instead of failing noisily.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from cli.errors import USAGE, CliError
from cli.output import emit_json
from cli.target import ROOT, Target, _aws_reason, stack_settings
from db import DB, JobstackError, create_db
from stacks.pools import output_key
from stacks.settings import RESERVED_HEADROOM, Settings

#: Lambda keeps at least this much of an account's concurrency unreserved; a reservation that would go
#: below it is refused (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
MIN_UNRESERVED = 100
REQUIRED_OUTPUTS = (
    "QueueUrl",
    "DeadLetterQueueUrl",
    "DatabaseSecretArn",
    "AlarmTopicArn",
    "WorkerFunctionName",
    "SweeperFunctionName",
    "EventSourceMappingId",
    "WorkerLogGroupName",
)
#: Where a developer's machine keeps the public CAs (Lambda's own path is in the settings).
LOCAL_CA_BUNDLES = ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem")


#: What an emulator cannot answer (moto implements no Lambda account settings and confirms no e-mail):
#: against one (--endpoint-url), these checks' failures are shown as such and do not fail the run.
EMULATOR_GAPS = {
    "Lambda concurrency": "moto implements no Lambda account settings",
    "alarms": "an emulator confirms no e-mail subscription",
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    emulator_gap: str = ""  # set when the check failed only because an emulator cannot answer it

    def line(self) -> str:
        if self.ok:
            return f"✓ {self.name}: {self.detail}"
        if self.emulator_gap:
            return f"○ {self.name}: {self.detail} (expected on an emulator: {self.emulator_gap})"
        return f"✗ {self.name}: {self.detail}" + (f" — {self.fix}" if self.fix else "")


class Doctor:
    def __init__(self, target: Target, settings: Settings, *, ca_file: str | None = None) -> None:
        self.target, self.settings, self.ca_file = target, settings, ca_file
        self.outputs: dict[str, str] = {}
        self.database_url: str | None = None

    def run(self) -> list[Check]:
        return self._on_emulator(self._checks())

    def _on_emulator(self, checks: list[Check]) -> list[Check]:
        if not self.target.endpoint_url:
            return checks
        return [
            replace(c, emulator_gap=EMULATOR_GAPS[c.name]) if not c.ok and c.name in EMULATOR_GAPS else c
            for c in checks
        ]

    def _checks(self) -> list[Check]:
        checks = [self.stack_outputs()]
        checks.append(self.secret())
        checks.append(self.database())
        checks.append(self.queues())
        checks.append(self.concurrency())
        checks.append(self.alarm_topic())
        return checks + self._as_configured()

    def before_deploy(self) -> list[Check]:
        """What can be checked before `cdk deploy` creates anything: the region against the layers the settings
        attach, the account's Lambda concurrency against this environment's reservations (a shortfall
        otherwise fails the deploy half-way, in CloudFormation), and the schedules' job types. A stack already
        deployed has its current reservations counted back."""
        self.stack_outputs()  # its outputs name our functions if deployed; not deployed: nothing of ours reserved
        return [self.region(), self.concurrency(), *self._as_configured()]

    def _as_configured(self) -> list[Check]:
        """The checks only some settings need, before and after a deploy alike: the VPC's routes, the
        schedules' job types, the limiters handlers name."""
        checks = []
        if self.settings.vpc_id:
            checks.append(self.network())
        if self.settings.schedules:
            checks.append(self.schedule_types())
        if self._limiters_in_use():
            checks.append(self.rate_limits())
        return checks

    def region(self) -> Check:
        """The region the deploy goes to (the environment's own, or the target's) against every regional layer
        the settings attach: stacks/deploy_regions.py decides, as the template's DeployRegion rule does."""
        from stacks.deploy_regions import region_problem, regional_layers

        region = self.settings.region or self.target.region_name
        problem = region_problem(self.settings, region)
        if problem:
            return Check("region", False, problem)
        layers = [layer.what for layer in regional_layers(self.settings)]
        if not layers:
            return Check("region", True, f"{region}: the settings attach no regional layer")
        return Check("region", True, f"{region} has every layer the settings attach: {'; '.join(layers)}")

    def network(self) -> Check:
        """In a VPC the functions reach AWS only through the subnets' routes: SQS and Secrets Manager always,
        and with tracing "otel" X-Ray (the ADOT collector exports from inside the function) and the OTLP
        endpoint. Without a route the SDK calls time out, and spans are dropped without a word. A default
        route through a NAT gateway (or transit gateway, or an appliance) reaches everything; otherwise each
        service needs an interface endpoint (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html)."""
        s = self.settings
        services = ["sqs", "secretsmanager", *(["xray"] if s.tracing == "otel" else [])]
        try:
            ec2 = self.target.client("ec2")
            egress = self._default_route_everywhere(ec2, s.vpc_id or "", list(s.vpc_subnet_ids))
            endpoints = {
                e["ServiceName"].rsplit(".", 1)[-1]
                for e in ec2.describe_vpc_endpoints(
                    Filters=[
                        {"Name": "vpc-id", "Values": [s.vpc_id]},
                        {"Name": "vpc-endpoint-type", "Values": ["Interface"]},
                    ]
                )["VpcEndpoints"]
                if e.get("State", "available").lower() == "available"
            }
        except Exception as err:
            return Check("network", False, f"cannot be read ({_aws_reason(err)})")
        if egress:
            return Check("network", True, f"every subnet has a default route out: {', '.join(services)} reachable")
        missing = [name for name in services if name not in endpoints]
        if s.tracing == "otel" and s.otel_exporter_endpoint:
            missing.append(s.otel_exporter_endpoint)
        if missing:
            what = "spans are dropped without a word" if set(missing) - {"sqs", "secretsmanager"} else "calls time out"
            return Check(
                "network", False,
                f"the functions' subnets have no default route out and no interface endpoint for "
                f"{', '.join(missing)}: {what}",
                f"add interface endpoints (com.amazonaws.{self.target.region_name}.SERVICE, private DNS on) or a NAT "
                "gateway route; an OTLP endpoint outside AWS needs the NAT route",
            )  # fmt: skip
        return Check("network", True, f"interface endpoints for {', '.join(services)}")

    @staticmethod
    def _default_route_everywhere(ec2: Any, vpc_id: str, subnet_ids: list[str]) -> bool:
        """Whether each subnet's route table (its own, else the VPC's main one) sends 0.0.0.0/0 somewhere that
        reaches out: a NAT gateway, a transit gateway, an instance or an interface (not a blackhole)."""
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
        by_subnet = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
        main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
        for subnet in subnet_ids:
            table = by_subnet.get(subnet, main)
            routes = table.get("Routes", []) if table else []
            if not any(
                r.get("DestinationCidrBlock") == "0.0.0.0/0"
                and r.get("State", "active") == "active"
                and any(r.get(k) for k in ("NatGatewayId", "TransitGatewayId", "InstanceId", "NetworkInterfaceId"))
                for r in routes
            ):
                return False
        return True

    def _limiters_in_use(self) -> bool:
        import worker.jobs  # noqa: F401 - registers the worker's handlers
        from worker.registry import named_rate_limits

        return bool(self.settings.rate_limits) or bool(named_rate_limits())

    def rate_limits(self) -> Check:
        """Handlers name limiters (`@job(..., rate_limit=NAME)`) that only the settings define: checked against
        this checkout's handlers before a deploy whose worker would refuse to start."""
        import worker.jobs  # noqa: F401 - registers the worker's handlers, as the deployed worker does
        from db.exceptions import ConfigError
        from worker.registry import check_rate_limits

        defined = [name for name, _ in self.settings.rate_limits]
        try:
            check_rate_limits(defined)
        except ConfigError as err:
            return Check("rate limits", False, str(err), "define it in the environment's rate_limits, or fix the name")
        return Check("rate limits", True, f"{len(defined)} defined; every limiter a handler names is defined")

    def schedule_types(self) -> Check:
        """Schedules name job types that only the worker's registry knows: checked here against the types
        this checkout's worker registers (the same code the asset ships), before the first fire fails."""
        import worker.jobs  # noqa: F401 - registers the worker's job types, as the deployed worker does
        from db import job_type_names

        known = set(job_type_names())
        unknown = sorted({s.type for s in self.settings.schedules} - known)
        if unknown:
            return Check(
                "schedules",
                False,
                f"job type(s) {', '.join(unknown)} are not registered by this worker",
                "register them in db/job_types.py (or fix the schedule's type) and deploy",
            )
        return Check("schedules", True, f"{len(self.settings.schedules)} schedule(s), every job type registered")

    # -- each check ------------------------------------------------------------------------------------

    def stack_outputs(self) -> Check:
        name = f"stack {self.settings.stack_name}"
        try:
            stack = self.target.client("cloudformation").describe_stacks(StackName=self.settings.stack_name)
        except Exception as err:
            return Check(name, False, f"cannot be read ({_aws_reason(err)})", f"deploy it: cdk deploy {name[6:]}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0].get("Outputs", [])}
        missing = [key for key in REQUIRED_OUTPUTS if key not in self.outputs]
        if missing:
            return Check(name, False, f"has no {', '.join(missing)} output", "deploy this version: cdk deploy")
        return Check(name, True, f"deployed, {len(self.outputs)} outputs")

    def secret(self) -> Check:
        from worker.secrets import database_url_from_secret

        arn = self.outputs.get("DatabaseSecretArn")
        if not arn:
            return Check("database secret", False, "unknown (no stack output)")
        try:
            self.database_url = database_url_from_secret(arn, self.target.client("secretsmanager"))
        except JobstackError as err:
            return Check("database secret", False, str(err))
        return Check("database secret", True, "holds a database URL the worker accepts (not shown)")

    def database(self) -> Check:
        from db.migrate import current, head

        url = self.target.database_url_flag or self.database_url
        if url is None:
            return Check("database", False, "not checked: no readable secret", "fix the secret first")
        ca = self._local_ca()
        try:
            db = create_db(url, sslmode=self.settings.database_sslmode, sslrootcert=ca)
        except JobstackError as err:
            return Check("database", False, str(err))
        try:
            return self._database(db, current, head)
        finally:
            db.dispose()

    def _database(self, db: DB, current: Callable[[DB], str | None], head: Callable[[], str]) -> Check:
        try:
            revision = current(db)
        except JobstackError as err:
            return Check("database", False, str(err), "check the URL, the network path and the CA file")
        own = make_url(db.engine.url).query.get("sslmode")
        tls = f"the URL's own sslmode={own}" if own else f"TLS {self.settings.database_sslmode}"
        if revision != head():
            return Check("database", False, f"answers ({tls}) at migration {revision or 'none'}, not {head()}",
                         "run: jobstack migrate --env " + self.settings.env_name)  # fmt: skip
        return Check("database", True, f"answers ({tls}), migrations at head ({revision})")

    def queues(self) -> Check:
        """Every pool's queue, DLQ and redrive against that pool's settings."""
        wrong: list[str] = []
        for pool in self.settings.all_pools:
            url = self.outputs.get(output_key(pool.name, "QueueUrl"))
            dlq_url = self.outputs.get(output_key(pool.name, "DeadLetterQueueUrl"))
            named = "" if pool.is_default else f"pool {pool.name}: "
            if not url or not dlq_url:
                if pool.is_default:
                    return Check("queues", False, "unknown (no stack outputs)")
                wrong.append(f"{named}not deployed")
                continue
            sqs = self.target.sqs
            try:
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
            except Exception as err:
                return Check("queues", False, f"{named}cannot be read ({_aws_reason(err)})")
            s = pool.settings
            redrive = json.loads(attrs.get("RedrivePolicy") or "{}")
            wrong += [
                f"{named}{what} is {got}, settings say {want}"
                for what, got, want in (
                    ("maxReceiveCount", int(redrive.get("maxReceiveCount", 0)), s.max_receive_count),
                    ("VisibilityTimeout", int(attrs.get("VisibilityTimeout", 0)), s.visibility_timeout_seconds),
                    ("MessageRetentionPeriod", int(attrs.get("MessageRetentionPeriod", 0)), s.retention_days * 86_400),
                )
                if got != want
            ]
            if redrive.get("deadLetterTargetArn") != dlq_arn:
                wrong.append(f"{named}the queue does not redrive to the stack's DLQ")
        if wrong:
            return Check("queues", False, "; ".join(wrong), "deploy the current settings: cdk deploy")
        pools = len(self.settings.all_pools)
        what = "queue, DLQ and redrive" if pools == 1 else f"{pools} pools' queues, DLQs and redrives"
        return Check(
            "queues", True, f"{what} (maxReceiveCount {self.settings.default_pool.settings.max_receive_count}) match"
        )

    def concurrency(self) -> Check:
        """Lambda keeps 100 of the account's concurrency unreserved and refuses a reservation that would go
        below it (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html); a new account's
        quota is often 10, where no reservation fits at all."""
        wanted = sum(p.settings.reserved_concurrency or 0 for p in self.settings.all_pools) + 1  # + the sweeper
        client = self.target.client("lambda")
        try:
            limits = client.get_account_settings()["AccountLimit"]
            names = [
                "SweeperFunctionName",
                *(output_key(p.name, "WorkerFunctionName") for p in self.settings.all_pools),
            ]
            ours = sum(self._reserved(client, self.outputs.get(k)) for k in names)
        except Exception as err:
            return Check("Lambda concurrency", False, f"cannot be read ({_aws_reason(err)})")
        quota, unreserved = int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"])
        left = unreserved + ours - wanted  # what stays unreserved once this stack's reservations are in place
        if left < MIN_UNRESERVED:
            needed = quota + MIN_UNRESERVED - left
            workers_fit = unreserved + ours - MIN_UNRESERVED - 1  # what the workers could reserve beside the sweeper
            lower = (
                f", or lower max_concurrency so the workers reserve at most {workers_fit} together (each reserves "
                "max_concurrency + 2)"
                if workers_fit >= 2 + RESERVED_HEADROOM
                else " (no reservation fits below that: the sweeper alone reserves 1)"
            )
            return Check(
                "Lambda concurrency", False,
                f"the account's quota is {quota}; reserving {wanted} would leave {left} unreserved (Lambda keeps "
                f"{MIN_UNRESERVED})",
                f"ask Service Quotas to raise Lambda's Concurrent executions (L-B99A9384) to at least {needed}{lower}",
            )  # fmt: skip
        return Check("Lambda concurrency", True, f"quota {quota}; reserving {wanted} leaves {left} unreserved")

    def alarm_topic(self) -> Check:
        arn = self.outputs.get("AlarmTopicArn")
        if not arn:
            return Check("alarms", False, "unknown (no stack output)")
        try:
            subs = self.target.client("sns").list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        except Exception as err:
            return Check("alarms", False, f"cannot be read ({_aws_reason(err)})")
        confirmed = [s for s in subs if s.get("SubscriptionArn", "").startswith("arn:")]
        if not confirmed:
            why = "no alarm_emails are set" if not self.settings.alarm_emails else "no subscription is confirmed yet"
            return Check(
                "alarms", False, f"the topic has no confirmed subscription ({why}): alarms reach nobody",
                "set alarm_emails and confirm the e-mail, or subscribe your chat or paging to AlarmTopicArn",
            )  # fmt: skip
        return Check("alarms", True, f"{len(confirmed)} confirmed subscription(s) on the alarm topic")

    # -- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _reserved(client: Any, function_name: str | None) -> int:
        if not function_name:
            return 0
        return int(client.get_function_concurrency(FunctionName=function_name).get("ReservedConcurrentExecutions") or 0)

    def _local_ca(self) -> str | None:
        """The CA file to verify against from this machine: --ca-file, the settings' bundle, or the OS's CAs."""
        if self.settings.database_sslmode not in ("verify-full", "verify-ca"):
            return None
        if self.ca_file:
            return self.ca_file
        if self.settings.database_ca_file:
            return str(ROOT / self.settings.database_ca_file)
        return next((path for path in LOCAL_CA_BUNDLES if Path(path).is_file()), None)


def report(checks: list[Check]) -> tuple[str, int]:
    text = "\n".join(check.line() for check in checks)
    return text, 0 if all(c.ok or c.emulator_gap for c in checks) else 1


def cmd_doctor(args: argparse.Namespace, target: Target) -> int:
    if not args.env:
        raise CliError("doctor checks a deployed environment: pass --env ENV", USAGE)
    doctor = Doctor(target, stack_settings(args.env), ca_file=args.ca_file)
    checks = doctor.before_deploy() if args.before_deploy else doctor.run()
    text, code = report(checks)
    if args.json:
        emit_json([{"check": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks])
    else:
        print(text)
    return code
