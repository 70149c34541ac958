"""Lambda's 4 KB of environment variables, measured as Lambda measures it, for every setting that adds to it.

Lambda's quota is 4 KB "for all environment variables associated with the function, in aggregate" (not
adjustable: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), and its refusal
quotes the string it measured: the whole map as JSON. moto's CreateFunction enforces no such limit, so the
rule is written here from AWS's words: a template whose function could exceed it fails synth in one line.

The settings that add variables (pools' route map and sweep windows, priority lanes, rate limits, tracing
and its endpoint, schedules' failure queue, the batched completion mode, the secrets extension's nine
variables) are crossed pairwise in a few synths of three environments each; every function of every
variant is measured, and the template's own limits are checked beside it.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from stacks.app_factory import build_app
from stacks.environment_size import LAMBDA_ENVIRONMENT_BYTES, check_environments, measure, worst_case
from stacks.limits import check_limits
from stacks.settings import SettingsError
from tests.support.synth import ENVIRONMENTS, cdk_context, synth_app, synth_errors

pytestmark = pytest.mark.infra

#: Limits of one CloudFormation template (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html).
MAX_RESOURCES, MAX_OUTPUTS, MAX_TEMPLATE_BYTES = 500, 200, 1_000_000


def _limiters(n: int) -> dict[str, dict[str, int]]:
    return {f"payments-provider-{i:02d}": {"per_second": 25, "burst": 50} for i in range(n)}


def _pools(n: int, types: int) -> dict[str, Any]:
    return {
        f"pool{i}": {"types": [f"billing.invoices.generate-monthly-{i}-{t:02d}" for t in range(types)]}
        for i in range(n)
    }


#: Each setting that adds to a function's environment, at a size a real stack may have.
FEATURES: dict[str, dict[str, Any]] = {
    "pools": {"pools": _pools(3, 5)},
    "lane": {"pools": {"urgent": {"priority": "high"}}},
    "rate_limits": {"rate_limits": _limiters(8)},
    "otel": {"tracing": "otel", "otel_exporter_endpoint": "https://otlp.collector.example.com:4318/v1/traces"},
    "schedules": {"schedules": {"nightly-report": {"cron": "0 3 * * ? *", "type": "test-echo"}}},
    "batched": {"completion": "batched"},
    "no_extension": {"secrets_extension": False},
}


def _merge(names: tuple[str, ...]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for name in names:
        for key, value in FEATURES[name].items():
            settings[key] = {**settings[key], **value} if isinstance(value, dict) and key in settings else value
    return settings


def _covering_rows() -> list[tuple[str, ...]]:
    """Rows (sets of features on) in which every pair of features appears on together, plus all on."""
    pairs = set(itertools.combinations(FEATURES, 2))
    rows: list[tuple[str, ...]] = [tuple(FEATURES)]
    while pairs:  # greedily, the 3-feature row covering most pairs still missing
        best = max(itertools.combinations(FEATURES, 3), key=lambda r: len(pairs & set(itertools.combinations(r, 2))))
        pairs -= set(itertools.combinations(best, 2))
        rows.append(best)
    return rows


ROWS = _covering_rows()


def _synth_unchecked(tmp_path: Path, rows: list[tuple[str, ...]]) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """The rows' templates, one environment each, as `app.synth()` writes them before any of our checks."""
    context = cdk_context()
    for env, row in zip(ENVIRONMENTS, rows, strict=False):
        context["jobstack"]["environments"][env].update(_merge(row))
    app = build_app(cdk.App(outdir=str(tmp_path), context=context))
    assembly = app.synth()
    check_limits(app)  # the templates' string limits, as the construct checks them
    return [
        (row, assembly.get_stack_by_name(f"JobsStack-{env}").template)
        for env, row in zip(ENVIRONMENTS, rows, strict=False)
    ]


@pytest.mark.parametrize("chunk", range(0, len(ROWS), 3), ids=lambda i: f"rows{i}-{i + 2}")
def test_every_pair_of_settings_fits_lambdas_environment_or_is_refused(tmp_path: Path, chunk: int) -> None:
    for row, template in _synth_unchecked(tmp_path, ROWS[chunk : chunk + 3]):
        functions = measure(template, worst_case(), stack_name="JobsStack-x")
        assert functions, row
        largest = max(functions, key=lambda f: f.size)
        if largest.size > LAMBDA_ENVIRONMENT_BYTES:
            with pytest.raises(SettingsError) as caught:
                check_environments(template, stack_name="JobsStack-x")
            assert str(caught.value).startswith(f"{largest.path}: ") and "\n" not in str(caught.value)
        else:
            check_environments(template, stack_name="JobsStack-x")
        # What the settings add is there to be counted (a variable the measure missed would be room unseen).
        names = {name for f in functions for name in f.variables}
        if "rate_limits" in row:
            assert "JOB_RATE_LIMITS" in names
        if "otel" in row:
            assert {"OTEL_EXPORTER_OTLP_ENDPOINT", "AWS_LAMBDA_EXEC_WRAPPER"} <= names
        if "no_extension" not in row:
            assert sum(n.startswith(("PARAMETERS_SECRETS_", "SECRETS_MANAGER_", "SSM_PARAMETER_")) for n in names) == 9
        if "schedules" in row:
            assert "SCHEDULE_FAILURES_URL" in names
        # The template's own limits, beside the functions'.
        body = json.dumps(template, separators=(",", ":"))
        assert len(template["Resources"]) <= MAX_RESOURCES and len(template.get("Outputs", {})) <= MAX_OUTPUTS
        assert len(body.encode()) <= MAX_TEMPLATE_BYTES


def test_it_is_measured_as_lambda_measures_it() -> None:
    """The whole map as compact JSON (quotes inside values escaped, so counted twice), each token at its
    longest: a queue URL in the longest region name with a 12-digit account."""
    template = {
        "Resources": {
            "Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "JobsStack-dev-jobs"}},
            "F": {
                "Type": "AWS::Lambda::Function",
                "Metadata": {"aws:cdk:path": "JobsStack-dev/Jobs/Worker/Resource"},
                "Properties": {"Environment": {"Variables": {"A": 'say "hi"', "QUEUE_URL": {"Ref": "Q"}}}},
            },
        }
    }
    worst = worst_case()
    [function] = measure(template, worst, stack_name="JobsStack-dev")
    url = f"https://sqs.{worst.region}.{worst.url_suffix}/123456789012/JobsStack-dev-jobs"
    assert function.path == "JobsStack-dev/Jobs/Worker"
    assert function.variables == {"A": 'say "hi"', "QUEUE_URL": url}
    assert function.size == len('{"A":"say \\"hi\\"","QUEUE_URL":"' + url + '"}')
    assert len(worst.region) >= len("ap-southeast-2") and worst.account == "123456789012"
    assert worst_case("eu-west-1").region == "eu-west-1"
    unknown = {"Resources": {"F": {**template["Resources"]["F"], "Properties": {"Environment": {"Variables": {
        "X": {"Fn::ImportValue": "elsewhere"}}}}}}}  # fmt: skip
    with pytest.raises(ValueError, match="no worst case known for"):
        measure(unknown, worst, stack_name="JobsStack-dev")


def test_sixty_rate_limits_on_one_pool_fail_synth_in_one_line(tmp_path: Path) -> None:
    """Reported: 60 limiters synthesized, and the worker's environment measured 4,796 bytes as JSON; the old
    estimate counted only the route map, with two or more pools."""
    context = cdk_context(dev={"rate_limits": _limiters(60)})
    with pytest.raises(SettingsError) as caught:
        synth_app(tmp_path / "out", context)
    message = str(caught.value)
    assert message.startswith("JobsStack-dev/Jobs/") and "\n" not in message
    assert f"over Lambda's {LAMBDA_ENVIRONMENT_BYTES} (not adjustable); the largest: JOB_RATE_LIMITS " in message
    assert message.endswith("define fewer rate_limits, list fewer job types in pools, or use shorter names")
    # The same through app.py, as `cdk synth` runs it: one line on stderr, no traceback.
    assert synth_errors(context, tmp_path / "app") == (1, [f"error: {message}"])


def test_four_pools_a_lane_otel_and_limiters_the_old_estimate_passed_are_refused(tmp_path: Path) -> None:
    """Reported: 4 pools x 11 types + a lane + otel + KMS + 3 limiters passed the old guard at 3,984 bytes and
    measured 4,180-4,293 on all 8 functions. Every function carries the route map, so each is over."""
    pools = _pools(4, 11) | {"urgent": {"priority": "high"}}
    settings = {
        "pools": pools, "tracing": "otel", "queue_encryption": "kms", "rate_limits": _limiters(3),
        "otel_exporter_endpoint": "https://otlp.collector.example.com:4318/v1/traces",
    }  # fmt: skip
    template = _template_of(tmp_path, settings)
    sizes = {f.path: f.size for f in measure(template, worst_case(), stack_name="JobsStack-dev")}
    assert len(sizes) == 7 and all(size > LAMBDA_ENVIRONMENT_BYTES for size in sizes.values()), sizes
    with pytest.raises(SettingsError, match=r"the largest: JOBSTACK_ROUTES \d+"):
        check_environments(template, stack_name="JobsStack-dev")


def _template_of(tmp_path: Path, dev: dict[str, Any]) -> dict[str, Any]:
    app = build_app(cdk.App(outdir=str(tmp_path / "one"), context=cdk_context(dev=dev)))
    found: dict[str, Any] = app.synth().get_stack_by_name("JobsStack-dev").template
    return found
