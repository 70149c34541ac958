"""One way to build the stack's functions: each with its own log group and retention, its own role with
inline policies only (no AWSLambdaBasicExecutionRole), JSON logs at the environment's level, and the
secrets extension and VPC placement the settings ask for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks import deploy_regions, nag
from stacks.function_network import FunctionNetwork
from stacks.settings import Settings
from stacks.worker_code import RUNTIME, RUNTIME_REASON, lambda_architecture
from worker.contract import LAMBDA_LOG_LEVELS  # the contract with the worker, written once


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # the construct id; its log group is `<name>Logs`, its role `<name>Role`
    handler: str
    description: str
    timeout: int
    memory: int
    environment: dict[str, str]
    reserved_concurrency: int | None
    retry_attempts: int | None = None
    snapstart: bool = False


def build_function(
    scope: Construct,
    spec: FunctionSpec,
    *,
    settings: Settings,
    code: lambda_.Code,
    removal: RemovalPolicy,
    network: FunctionNetwork | None,
) -> tuple[lambda_.Function, logs.LogGroup]:
    log_group = logs.LogGroup(
        scope, f"{spec.name}Logs", retention=_retention(settings.log_retention_days), removal_policy=removal
    )
    role = iam.Role(
        scope,
        f"{spec.name}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=spec.description,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[f"{log_group.log_group_arn}"]
        )
    )
    if network:
        network.grant_interfaces(role)
    function = lambda_.Function(
        scope,
        spec.name,
        runtime=RUNTIME,
        architecture=lambda_architecture(settings.architecture),
        handler=spec.handler,
        code=code,
        description=f"{settings.stack_name}: {spec.description}",
        timeout=Duration.seconds(spec.timeout),
        memory_size=spec.memory,
        environment=spec.environment,
        reserved_concurrent_executions=spec.reserved_concurrency,
        retry_attempts=spec.retry_attempts,
        role=role,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        # Lambda's runtime sets the root logger to this level: DEBUG everywhere would let every library's
        # DEBUG lines out (botocore logs whole responses). The environment's log_level, nothing lower.
        application_log_level_v2=getattr(lambda_.ApplicationLogLevel, LAMBDA_LOG_LEVELS[settings.log_level]),
        system_log_level_v2=lambda_.SystemLogLevel.WARN,
        params_and_secrets=_secrets_extension() if settings.secrets_extension else None,
        snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if spec.snapstart else None,
        **_tracing(settings),
        **(network.function_props() if network else {}),
    )
    nag.acknowledge(function, "AwsSolutions-L1", RUNTIME_REASON)
    if settings.tracing != "off":
        nag.acknowledge(role, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
    return function, log_group


XRAY_REASON = (
    "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource ARN (the Service Authorization "
    "Reference lists no resource types for them): Resource '*' is the only form, added by Lambda active tracing"
)


def _tracing(settings: Settings) -> dict[str, Any]:
    """The setting `tracing`: "xray", Lambda's active tracing (the invocation's segment, linked to the
    message's AWSTraceHeader); "otel", the same plus the ADOT layer, whose SDK exports the worker's
    OpenTelemetry spans through its collector (to X-Ray, or otel_exporter_endpoint); "off", neither."""
    if settings.tracing == "off":
        return {}
    props: dict[str, Any] = {"tracing": lambda_.Tracing.ACTIVE}
    if settings.tracing == "otel":
        props["adot_instrumentation"] = lambda_.AdotInstrumentationConfig(
            layer_version=lambda_.AdotLayerVersion.from_python_sdk_layer_version(deploy_regions.ADOT_LAYER),
            exec_wrapper=lambda_.AdotLambdaExecWrapper.INSTRUMENT_HANDLER,
        )
    return props


_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}  # fmt: skip


def _retention(days: int) -> logs.RetentionDays:
    return getattr(logs.RetentionDays, _RETENTION[days])  # type: ignore[no-any-return]


def _secrets_extension() -> lambda_.ParamsAndSecretsLayerVersion:
    """AWS's Parameters and Secrets Lambda Extension, the newest version aws-cdk-lib maps per region (the
    Jobs construct has checked the region: stacks/deploy_regions.py). It
    calls Secrets Manager with the function's own role (the same GetSecretValue statement). Its cache lives
    at most 300 s (its maximum); refused credentials bypass it (worker/secret_sources.py)."""
    return lambda_.ParamsAndSecretsLayerVersion.from_version(
        deploy_regions.VERSION,
        cache_size=10,
        secrets_manager_ttl=Duration.seconds(300),
        log_level=lambda_.ParamsAndSecretsLogLevel.WARN,
    )
