"""What every model shares: the table name from the template, the AWS region, and JSON attributes."""
from __future__ import annotations

import json
import os

from pynamodb.attributes import Attribute
from pynamodb.constants import STRING

from homevisits.aws import pynamodb_settings
from homevisits.settings import table_name


def meta(logical_id: str):
    """A PynamoDB Meta for a template table; the endpoint comes from AWS_ENDPOINT_URL_DYNAMODB locally."""

    class Meta:
        pass

    Meta.table_name = table_name(logical_id)
    Meta.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-north-1"
    for name, value in pynamodb_settings().items():  # one timeout budget for every client
        setattr(Meta, name, value)
    return Meta


class JSONAttribute(Attribute):
    """Any JSON value, stored as a string: for compact nested data read and written whole."""

    attr_type = STRING

    def serialize(self, value):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    def deserialize(self, value):
        return json.loads(value)
