"""The worker's Lambda code asset, bundled locally (see stacks/bundling.py) under our own content hash."""

from __future__ import annotations

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from stacks.bundling import ROOT, SOURCE_PACKAGES, BundleSpec, LocalBundler
from stacks.settings_model import DjangoProject

#: Python 3.13, not Lambda's newest (3.14): the asset ships bytecode, which only an interpreter of exactly the
#: function's version can compile, and no 3.14 interpreter can be installed where this is built (no package
#: registry these machines reach has one). cdk-nag's L1 finding says so where it is acknowledged.
RUNTIME = lambda_.Runtime.PYTHON_3_13
PYTHON_VERSION = "3.13"
RUNTIME_REASON = (
    "Python 3.13, not 3.14: the asset ships bytecode compiled by an interpreter of exactly the runtime's version, "
    "and the build machines can install 3.13 but no 3.14; cold start is 2-3x faster with bytecode"
)


@jsii.implements(ILocalBundling)
class _JsiiLocalBundler(LocalBundler):
    pass


def worker_code(architecture: str, django: DjangoProject | None = None) -> lambda_.Code:
    spec = BundleSpec(python_version=PYTHON_VERSION, architecture=architecture, django=django)
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
