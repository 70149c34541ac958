"""cdk-nag acknowledgements in one place, so each is written next to the code it excuses and a test can turn
them all off (tests/infra/test_checks.py) to prove every one of them is still needed."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Record why a cdk-nag finding does not apply, next to the construct it excuses."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))
