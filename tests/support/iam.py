"""IAM policies from a synthesized template, put into moto as AWS would decide them: intrinsic functions
resolved against what moto created, and the SQS batch actions authorized by their single actions."""

from __future__ import annotations

from typing import Any

ACCOUNT, REGION = "123456789012", "us-east-1"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}


def resolve(value: Any, arns: dict[str, str]) -> Any:
    """The template's intrinsic functions, resolved against what moto created."""
    if isinstance(value, list):
        return [resolve(v, arns) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return PSEUDO.get(value["Ref"]) or arns[value["Ref"]]
    if "Fn::GetAtt" in value:
        return arns[value["Fn::GetAtt"][0]]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p, arns)) for p in parts)
    return {k: resolve(v, arns) for k, v in value.items()}


#: AWS authorizes the batch calls with the single call's permission ("the permissions for SendMessageBatch,
#: DeleteMessageBatch and ChangeMessageVisibilityBatch are the same as for SendMessage, DeleteMessage and
#: ChangeMessageVisibility": the SQS API reference); moto checks "sqs:SendMessageBatch" itself. The policies
#: put into moto get the batch names beside the single ones, so moto decides as AWS does.
BATCH_OF = {
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}


def as_aws_authorizes(document: dict[str, Any]) -> dict[str, Any]:
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = actions + [BATCH_OF[a] for a in actions if a in BATCH_OF]
    return document


def policies_of(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    return [
        r["Properties"]["PolicyDocument"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"][0]["Ref"].startswith(role_prefix)
    ]
