"""The operator's view of a table while the engine is filling it (a restore) or deleting it.

The engine, as DynamoDB, refuses DescribeTimeToLive while a table is CREATING
or DELETING. Asking anyway made a Restore's target Table look refused by its
engine (EngineRefused: a sticky Failed) whenever the Table controller looked
during the restore: the restore end-to-end test's rare CI failure.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tablekeeper.controllers.builders import Credentials
from tablekeeper.controllers.engine_client import EngineClient
from tablekeeper.controllers.table_plan import plan_changes
from tablekeeper.resources.table import TableSpec

ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/orders"


class Engine:
    """DescribeTable, DescribeTimeToLive and ListTagsOfResource as the engine answers them."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.ttl_asked = False

    def describe_table(self, TableName: str) -> dict[str, Any]:  # boto3's parameter names
        return {"Table": {
            "TableName": TableName, "TableArn": ARN, "TableStatus": self.status,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        }}  # fmt: skip

    def describe_time_to_live(self, TableName: str) -> dict[str, Any]:
        self.ttl_asked = True
        if self.status in ("CREATING", "DELETING"):
            message = (f"Cannot describe time to live while table is in {self.status} state: "
                       f"Current table state is {self.status}")  # fmt: skip
            answer: Any = {"Error": {"Code": "ValidationException", "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}  # fmt: skip
            raise ClientError(answer, "DescribeTimeToLive")
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}

    def list_tags_of_resource(self, ResourceArn: str) -> dict[str, Any]:
        return {"Tags": []}


def _client(engine: Engine) -> EngineClient:
    client = EngineClient("http://127.0.0.1:1", Credentials("AKID", "secret"), "orders")
    client._client = engine
    return client


@pytest.mark.parametrize("status", ["CREATING", "DELETING"])
def test_a_table_being_filled_or_deleted_is_seen_busy_not_refused(status: str) -> None:
    engine = Engine(status)
    seen = _client(engine).describe()
    assert seen is not None and seen.status == status and seen.busy
    assert not engine.ttl_asked
    spec = TableSpec.model_validate({"keySchema": {"partitionKey": {"name": "pk", "type": "S"}}})
    assert plan_changes(spec, seen).busy, "the Table controller waits for it"


def test_an_active_table_is_seen_with_its_ttl() -> None:
    engine = Engine("ACTIVE")
    seen = _client(engine).describe()
    assert seen is not None and not seen.busy and seen.ttl_status == "DISABLED"
    assert engine.ttl_asked
