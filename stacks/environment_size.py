"""Lambda's 4 KB for a function's environment variables, measured the way Lambda measures it, at synth.

Lambda's quota: "Function environment variables: 4 KB, for all environment variables associated with the
function, in aggregate" (not adjustable; https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html),
and its refusal ("Lambda was unable to configure your environment variables because the environment variables
you have provided exceeded the 4KB limit. String measured: {"K":"V",...}") shows what it counts: the whole map
as compact JSON, inner quotes escaped. A template over it synthesizes and passes cdk-nag and cfn-lint, then
fails `CreateFunction` half-way through a deploy. So every function of the synthesized template is measured
here: its variables as they are in the template (the ones CDK adds, like the secrets extension's nine and
the ADOT wrapper, included), each CloudFormation token replaced by the longest value it can take (queue
URLs and ARNs in the longest region, partition and URL suffix, with a 12-digit account), and a function
over the limit fails synth in one line naming it and its largest variables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from stacks.settings import SettingsError

LAMBDA_ENVIRONMENT_BYTES = 4096
ACCOUNT = "123456789012"  # every account id has 12 digits
#: Secrets Manager appends a hyphen and 6 random characters to a secret's name in its ARN.
SECRET_ARN_SUFFIX = "-AbCdEf"  # noqa: S105 - not a secret: the shape of an ARN
#: What CloudFormation appends to a name it generates when the template gives none ("stack-LogicalId-" and
#: random characters, e.g. JobsStack-dev-JobsDatabaseSecretCF9BAEDD-1A2B3C4D5E6F7).
GENERATED_SUFFIX = "-1A2B3C4D5E6F7"


@dataclass(frozen=True)
class Worst:
    """The longest value each pseudo parameter can take where the stack may be deployed."""

    region: str
    partition: str
    url_suffix: str
    account: str = ACCOUNT


@cache
def worst_case(region: str | None = None) -> Worst:
    """A bound stack's own region (its partition and suffix at their longest); an agnostic one's, the longest
    of each among aws-cdk-lib's known regions."""
    from aws_cdk import region_info

    regions = list(region_info.RegionInfo.regions)
    if region is not None:
        regions = [r for r in regions if r.name == region] or regions
    return Worst(
        region=region or max((r.name for r in regions), key=len),
        partition=max((r.partition or "" for r in regions), key=len),
        url_suffix=max((r.domain_suffix or "" for r in regions), key=len),
    )


@dataclass(frozen=True)
class Measured:
    """One function's environment as Lambda would measure it."""

    path: str  # the construct path, e.g. JobsStack-dev/Jobs/Sweeper
    variables: dict[str, str]

    @property
    def size(self) -> int:
        return _json_bytes(self.variables)

    def largest(self, n: int = 3) -> list[tuple[str, int]]:
        """The n variables that take the most room (name, bytes of `"NAME":"VALUE",`)."""
        sizes = {k: _json_bytes({k: v}) - 1 for k, v in self.variables.items()}  # "K":"V", with one brace for ","
        return sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:n]


def _json_bytes(variables: Mapping[str, str]) -> int:
    return len(json.dumps(variables, separators=(",", ":"), ensure_ascii=False).encode())


def measure(template: Mapping[str, Any], worst: Worst, *, stack_name: str) -> list[Measured]:
    """Every Lambda function of `template` with its variables at their longest."""
    realize = _Realizer(template, worst, stack_name)
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        path = resource.get("Metadata", {}).get("aws:cdk:path", logical_id).removesuffix("/Resource")
        found.append(Measured(path, {name: realize(value) for name, value in variables.items()}))
    return found


def check_environments(template: Mapping[str, Any], *, stack_name: str, region: str | None = None) -> list[Measured]:
    """SettingsError in one line for the first function whose environment could exceed Lambda's 4 KB."""
    measured = measure(template, worst_case(region), stack_name=stack_name)
    for function in measured:
        if function.size > LAMBDA_ENVIRONMENT_BYTES:
            largest = ", ".join(f"{name} {size}" for name, size in function.largest())
            raise SettingsError(
                f"{function.path}: its environment variables would take up to {function.size} bytes as Lambda "
                f"measures them (the whole map as JSON), over Lambda's {LAMBDA_ENVIRONMENT_BYTES} (not adjustable); "
                f"the largest: {largest}: define fewer rate_limits, list fewer job types in pools, or use shorter names"
            )
    return measured


class _Realizer:
    """CloudFormation intrinsics to the longest string each can become."""

    def __init__(self, template: Mapping[str, Any], worst: Worst, stack_name: str) -> None:
        self.stack_name = stack_name
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.mappings: Mapping[str, Any] = template.get("Mappings", {})
        self.parameters: Mapping[str, Any] = template.get("Parameters", {})
        self.worst = worst

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float, bool)):
            return json.dumps(value)
        if isinstance(value, Mapping) and len(value) == 1:
            [(function, argument)] = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.attribute(logical_id, attribute)
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(self(part) for part in parts)
            if function == "Fn::FindInMap":
                name, _, key = argument
                return max((str(row.get(key, "")) for row in self.mappings[name].values()), key=len)
            if function == "Fn::Select":
                index, items = argument
                return self(items[int(index)]) if isinstance(items, list) else self(items)
        raise ValueError(f"no worst case known for {json.dumps(value)[:200]}: add it to stacks/environment_size.py")

    def ref(self, name: str) -> str:
        w = self.worst
        pseudo = {
            "AWS::Region": w.region,
            "AWS::AccountId": w.account,
            "AWS::Partition": w.partition,
            "AWS::URLSuffix": w.url_suffix,
            "AWS::StackName": self.stack_name,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:  # CDK's asset and bootstrap parameters: an SSM path's worth
            return "x" * 2048 if self.parameters[name].get("Type", "").startswith("AWS::SSM") else "x" * 128
        resource = self.resources[name]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::SQS::Queue":
            return self._queue_url(props)
        if kind == "AWS::SecretsManager::Secret":
            return self._arn("secretsmanager", f"secret:{self._name(name, props, 'Name')}{SECRET_ARN_SUFFIX}")
        if kind == "AWS::SNS::Topic":
            return self._arn("sns", self._name(name, props, "TopicName"))
        if kind == "AWS::Lambda::Function":
            return self._name(name, props, "FunctionName")
        if kind == "AWS::KMS::Key":
            return "12345678-1234-1234-1234-123456789012"
        raise ValueError(f"no worst case known for a Ref to {kind}: add it to stacks/environment_size.py")

    def attribute(self, logical_id: str, attribute: str) -> str:
        resource = self.resources[logical_id]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::SQS::Queue":
            name = self._queue_name(props)
            return {"Arn": self._arn("sqs", name), "QueueName": name, "QueueUrl": self._queue_url(props)}[attribute]
        if attribute == "Arn":
            service = kind.split("::")[1].lower()
            return self._arn(service, self._name(logical_id, props, "Name"))
        raise ValueError(f"no worst case known for {kind}.{attribute}: add it to stacks/environment_size.py")

    def _name(self, logical_id: str, props: Mapping[str, Any], key: str) -> str:
        """The resource's name as the template gives it, or as CloudFormation would generate it."""
        given = props.get(key)
        return self(given) if given is not None else f"{self.stack_name}-{logical_id}{GENERATED_SUFFIX}"

    def _queue_name(self, props: Mapping[str, Any]) -> str:
        name = props.get("QueueName")
        return self(name) if name is not None else f"{self.stack_name}-Queue{GENERATED_SUFFIX}"

    def _queue_url(self, props: Mapping[str, Any]) -> str:
        w = self.worst
        return f"https://sqs.{w.region}.{w.url_suffix}/{w.account}/{self._queue_name(props)}"

    def _arn(self, service: str, resource: str) -> str:
        w = self.worst
        return f"arn:{w.partition}:{service}:{w.region}:{w.account}:{resource}"
