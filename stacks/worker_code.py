"""The worker's Lambda code asset, bundled locally (see stacks/bundling.py) under our own content hash."""

from __future__ import annotations

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from stacks.bundling import ROOT, SOURCE_PACKAGES, BundleSpec, LocalBundler

RUNTIME = lambda_.Runtime.PYTHON_3_14  # the newest Python Lambda runs, and the one cdk-nag's L1 rule wants
PYTHON_VERSION = "3.14"


@jsii.implements(ILocalBundling)
class _JsiiLocalBundler(LocalBundler):
    pass


def worker_code(architecture: str) -> lambda_.Code:
    spec = BundleSpec(python_version=PYTHON_VERSION, architecture=architecture)
    return lambda_.Code.from_asset(
        str(ROOT),
        asset_hash=spec.digest(),
        asset_hash_type=AssetHashType.CUSTOM,
        # Only the packages the bundle copies; the rest of the repository never reaches the asset stage.
        exclude=["*", *(f"!{p}" for p in SOURCE_PACKAGES), *(f"!{p}/**" for p in SOURCE_PACKAGES)],
        bundling=BundlingOptions(
            image=DockerImage.from_registry("docker-is-never-used"),  # required field; local always succeeds
            local=_JsiiLocalBundler(spec),
        ),
    )


def lambda_architecture(name: str) -> lambda_.Architecture:
    return lambda_.Architecture.ARM_64 if name == "arm64" else lambda_.Architecture.X86_64
