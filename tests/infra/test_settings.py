"""Every settings rule fails with one line naming the environment, the key and the rule."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from stacks.settings import SettingsError, load_all, load_settings
from tests.support.synth import ROOT, cdk_context

pytestmark = pytest.mark.unit
#: The Django example as cdk.json names it (examples/django_signup/README.md).
DJANGO = {
    "settings_module": "examples.django_signup.settings",
    "packages": ["examples"],
    "requirements": "examples/django_signup/requirements.txt",
}
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"


def with_dev(**values: Any) -> dict[str, Any]:
    return cdk_context(dev=values)


def test_the_committed_settings_load_for_every_environment() -> None:
    settings = {s.env_name: s for s in load_all(cdk_context())}
    assert set(settings) == {"dev", "staging", "prod"}
    assert settings["prod"].removal_policy == "retain"
    assert settings["dev"].architecture == "arm64"
    assert settings["dev"].visibility_timeout_seconds == 6 * settings["dev"].timeout_seconds
    # Reserved concurrency follows the event source's cap, so prod no longer reserves 100 for 50 pollers.
    assert [(s.max_concurrency, s.reserved_concurrency) for s in settings.values()] == [(5, 7), (10, 12), (50, 52)]


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"batch_size": 50}, "batch_size is 50: a batch over 10 needs max_batching_window_seconds of at least 1"),
        ({"max_concurrency": 1}, "max_concurrency must be between 2 and 1000"),
        ({"max_concurrency": 1001}, "max_concurrency must be between 2 and 1000"),
        (
            {"reserved_concurrency": 10},
            "reserved_concurrency is derived, not set (max_concurrency + 2): set max_concurrency",
        ),
        ({"retention_days": 14}, "retention_days must be 1-13: the DLQ keeps messages 14 days"),
        ({"max_receive_count": 3}, "max_receive_count must be between 5 (AWS's recommendation for Lambda event"),
        (
            {"retention_days": 1, "alarm_oldest_message_seconds": 86_400},
            "alarm_oldest_message_seconds (86400) must be below the queue's retention (1 days): messages expire",
        ),
        ({"completed_retention_days": -1}, "completed_retention_days must be between 0 (keep forever) and 3650"),
        ({"sweep_expired_after_seconds": 60}, "sweep_expired_after_seconds is derived, not set"),
        ({"timeout_seconds": 901}, "timeout_seconds must be between 1 and 900"),
        ({"visibility_timeout_seconds": 300}, "visibility_timeout_seconds is derived, not set"),
        ({"batch_sise": 10}, "unknown key 'batch_sise'"),
        ({"memory_mb": "lots"}, "memory_mb must be a whole number"),
        ({"architecture": "arm"}, "architecture must be 'arm64' or 'x86_64'"),
        ({"alarm_emails": ["ops-at-example"]}, "alarm_emails has 'ops-at-example', which is not an e-mail address"),
        ({"log_retention_days": 10}, "log_retention_days must be one of CloudWatch's values"),
        ({"account": "123"}, "account and region must be set together"),
        ({"account": "123", "region": "eu-west-1"}, "account must be a 12-digit AWS account id"),
        ({"database_secret_arn": "my-secret"}, "database_secret_arn must be a full Secrets Manager secret ARN"),
        (
            {"database_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobs-db"},
            "database_secret_arn must be a full Secrets Manager secret ARN, ending in the 6 characters after the name",
        ),
        ({"termination_protection": "yes"}, "termination_protection must be true or false"),
        ({"snapstart": "on"}, "snapstart must be true or false"),
        ({"secrets_extension": 1}, "secrets_extension must be true or false"),
        ({"database_sslmode": "prefer"}, "database_sslmode must be one of verify-full, verify-ca, require, disable"),
        ({"database_ca_file": "/etc/ssl/ca.pem"}, "database_ca_file must be a path under worker/ or db/"),
        ({"database_ca_file": "worker/certs/none.pem"}, "database_ca_file worker/certs/none.pem does not exist"),
        (
            {"database_secret_kms_key_arn": KEY_ARN},
            "database_secret_kms_key_arn needs database_secret_arn",
        ),
        ({"s3_read_buckets": ["Bad_Bucket"]}, "s3_read_buckets has 'Bad_Bucket'"),
        ({"queue_encryption": "aes"}, "queue_encryption must be 'sqs' (SQS-managed keys) or 'kms' (a KMS key)"),
        (
            {"queue_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"},
            "queue_kms_key_arn needs queue_encryption 'kms'",
        ),
        (
            {"queue_encryption": "kms", "queue_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:alias/jobs"},
            "queue_kms_key_arn must be a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias or id",
        ),
        ({"vpc_id": "vpc-0123456789abcdef0"}, "vpc_id needs vpc_subnet_ids: the private subnets"),
        ({"vpc_subnet_ids": ["subnet-12345678"]}, "vpc_subnet_ids needs vpc_id"),
        ({"vpc_security_group_ids": ["sg-12345678"]}, "vpc_security_group_ids needs vpc_id"),
        (
            {"vpc_id": "vpc-1", "vpc_subnet_ids": ["subnet-12345678"]},
            "vpc_id is 'vpc-1', which is not an id like vpc-0123456789abcdef0",
        ),
        (
            {"vpc_id": "vpc-12345678", "vpc_subnet_ids": ["subnet-12345678", "Subnet-A"]},
            "vpc_subnet_ids has 'Subnet-A', which is not an id like subnet-0123456789abcdef0",
        ),
        (
            {"vpc_id": "vpc-12345678", "vpc_subnet_ids": ["subnet-12345678"], "vpc_security_group_ids": ["sg-1"]},
            "vpc_security_group_ids has 'sg-1', which is not an id like sg-0123456789abcdef0",
        ),
        (
            {"vpc_id": "vpc-12345678", "vpc_subnet_ids": ["subnet-12345678", "subnet-12345678"]},
            "vpc_subnet_ids lists an id twice",
        ),
        (
            {"vpc_id": "vpc-12345678", "vpc_subnet_ids": [f"subnet-{i:08x}" for i in range(17)]},
            "vpc_subnet_ids has 17 ids: Lambda allows at most 16",
        ),
        ({"vpc_subnet_ids": "subnet-12345678"}, "vpc_subnet_ids must be a list of strings"),
        ({"django": "mysite.settings"}, 'django must be {"settings_module": "mysite.settings", "packages"'),
        ({"django": {**DJANGO, "packages": []}}, 'django must be {"settings_module"'),
        ({"django": {**DJANGO, "apps": []}}, "unknown key 'apps'"),
        ({"django": {**DJANGO, "requirements": "../requirements.txt"}}, "requirements must be a path inside the"),
        ({"django": {**DJANGO, "requirements": "nope.txt"}}, "requirements 'nope.txt' does not exist"),
        ({"django": {**DJANGO, "packages": ["mysite"]}}, "packages: 'mysite' is not a package under '.'"),
        ({"django": {**DJANGO, "packages": ["examples", "db"]}}, "packages: 'db' is the worker's own"),
        ({"django": {**DJANGO, "settings_module": "other.settings"}}, "settings_module 'other.settings' must be a"),
        (
            {"django": {**DJANGO, "settings_module": "examples.django_signup.nope"}},
            "settings_module 'examples.django_signup.nope': no ./examples/django_signup/nope.py",
        ),
    ],
)
def test_invalid_settings_fail_with_one_line(values: dict[str, Any], says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(with_dev(**values), "dev")
    message = str(caught.value)
    assert message.startswith("invalid settings for environment 'dev': ")
    assert says in message
    assert "\n" not in message


def test_a_vpc_loads_with_or_without_security_groups() -> None:
    vpc = {"vpc_id": "vpc-0123456789abcdef0", "vpc_subnet_ids": ["subnet-12345678", "subnet-0123456789abcdef0"]}
    plain = load_settings(with_dev(**vpc), "dev")
    assert (plain.vpc_id, plain.vpc_subnet_ids, plain.vpc_security_group_ids) == (
        "vpc-0123456789abcdef0",
        ("subnet-12345678", "subnet-0123456789abcdef0"),
        (),
    )
    grouped = load_settings(with_dev(**vpc, vpc_security_group_ids=["sg-12345678"]), "dev")
    assert grouped.vpc_security_group_ids == ("sg-12345678",)


def test_prod_must_not_send_database_traffic_in_clear() -> None:
    with pytest.raises(SettingsError, match="database_sslmode must not be 'disable' in prod"):
        load_settings(cdk_context(prod={"database_sslmode": "disable"}), "prod")


def test_prod_must_retain() -> None:
    context = cdk_context(prod={"removal_policy": "destroy"})
    with pytest.raises(SettingsError, match="removal_policy must be 'retain' in prod"):
        load_settings(context, "prod")


def test_the_settings_module_imports_no_aws_cdk() -> None:
    code = "import sys, stacks.settings; print(any(m.startswith(('aws_cdk', 'jsii')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_django_project_loads() -> None:
    project = load_settings(with_dev(django=DJANGO), "dev").django
    assert project is not None and project.settings_module == "examples.django_signup.settings"
    assert (project.packages, project.root) == (("examples",), ".")


def test_a_pool_cannot_name_its_own_django_project() -> None:
    """The asset is one for every pool: the project is the environment's."""
    with pytest.raises(SettingsError, match="pool 'video': unknown key 'django'"):
        load_settings(with_dev(pools={"video": {"types": ["test-echo"], "django": DJANGO}}), "dev")
