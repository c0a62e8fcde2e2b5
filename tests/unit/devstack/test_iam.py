"""The local IAM evaluator (devstack.iam): the template's policies expanded as SAM does, each AWS
call mapped to the IAM actions and resources AWS checks, and IAM's evaluation rules."""
from __future__ import annotations

import pytest

from devstack import iam


def _decide(function_id: str, service: str, operation: str, params: dict) -> set[str]:
    statements = iam.policy_statements(function_id)
    return {iam.evaluate(statements, r) for r in iam.authorization_requests(service, operation, params)}


SMS = {"PhoneNumber": "+46701234567", "Message": "Hembesök bokat"}


def test_an_sms_publish_is_allowed_to_the_notifications_function_and_nothing_else():
    assert _decide("NotificationsFunction", "sns", "Publish", SMS) == {"allow"}
    topic = {"TopicArn": f"arn:aws:sns:{iam.region()}:{iam.ACCOUNT}:anything", "Message": "x"}
    assert _decide("NotificationsFunction", "sns", "Publish", topic) == {"explicit_deny"}
    assert _decide("BookingFunction", "sns", "Publish", SMS) == {"implicit_deny"}


def test_an_sns_protocol_condition_never_matches_a_publish():
    """sns:Protocol is in the request context of Subscribe only: the policy the template once had
    (Publish on * if sns:Protocol = sms) denies every SMS, and allows an SMS subscription."""
    old = [{"Effect": "Allow", "Action": ["sns:Publish", "sns:Subscribe"], "Resource": "*",
            "Condition": {"StringEquals": {"sns:Protocol": "sms"}}}]
    [publish] = iam.authorization_requests("sns", "Publish", SMS)
    assert iam.evaluate(old, publish) == "implicit_deny"
    [subscribe] = iam.authorization_requests("sns", "Subscribe", {"TopicArn": "arn:aws:sns:eu-north-1:1:t",
                                                                  "Protocol": "sms", "Endpoint": "+4670"})
    assert iam.evaluate(old, subscribe) == "allow"


def test_reconciliation_may_put_events_on_the_bus():
    entries = {"Entries": [{"Source": "homevisits.payments", "DetailType": "BookingConfirmed", "Detail": "{}",
                            "EventBusName": "HomeVisitsBus"}]}
    assert _decide("ReconcileFunction", "events", "PutEvents", entries) == {"allow"}
    assert _decide("NotificationsFunction", "events", "PutEvents", entries) == {"implicit_deny"}


def test_a_transaction_needs_each_items_action_on_each_items_table():
    """TransactWriteItems is authorised per item (PutItem, UpdateItem, ConditionCheckItem, ...),
    as AWS's 'Using IAM with DynamoDB transactions' describes."""
    params = {"TransactItems": [{"Put": {"TableName": "BookingsTable", "Item": {}}},
                                {"Update": {"TableName": "CapacityTable", "Key": {}, "UpdateExpression": "x"}},
                                {"ConditionCheck": {"TableName": "PlansTable", "Key": {}, "ConditionExpression": "y"}}]}
    reqs = iam.authorization_requests("dynamodb", "TransactWriteItems", params)
    assert [(r.action, r.resource.rsplit("/", 1)[-1]) for r in reqs] == [
        ("dynamodb:PutItem", "BookingsTable"), ("dynamodb:UpdateItem", "CapacityTable"),
        ("dynamodb:ConditionCheckItem", "PlansTable")]
    statements = iam.policy_statements("BookingFunction")
    assert [iam.evaluate(statements, r) for r in reqs] == ["allow", "allow", "implicit_deny"]


def test_payments_has_no_access_to_the_idempotency_table_it_never_uses():
    assert _decide("PaymentsFunction", "dynamodb", "PutItem", {"TableName": "IdempotencyTable"}) == {"implicit_deny"}
    assert _decide("BookingFunction", "dynamodb", "PutItem", {"TableName": "IdempotencyTable"}) == {"allow"}


def test_queries_on_an_index_and_queue_sends_resolve_to_their_arns():
    assert _decide("BookingFunction", "dynamodb", "Query", {"TableName": "BookingsTable",
                                                             "IndexName": "by-patient"}) == {"allow"}
    url = iam.queue_url("ReplanQueue.fifo")
    assert _decide("DispatchFunction", "sqs", "SendMessage", {"QueueUrl": url}) == {"allow"}
    assert _decide("BookingFunction", "sqs", "SendMessage", {"QueueUrl": url}) == {"implicit_deny"}


def test_ssm_parameters_resolve_with_their_leading_slash():
    pepper = {"Name": "/homevisits/identity/pepper", "WithDecryption": True}
    stripe = {"Name": "/homevisits/stripe/secret-key", "WithDecryption": True}
    assert _decide("BookingFunction", "ssm", "GetParameter", pepper) == {"allow"}
    assert _decide("BookingFunction", "ssm", "GetParameter", stripe) == {"implicit_deny"}
    assert _decide("PaymentsFunction", "ssm", "GetParameter", stripe) == {"allow"}


@pytest.mark.parametrize("operator,expected,context,holds", [
    ("StringEquals", "sms", {}, False),                      # a missing key does not match
    ("StringNotEquals", "sms", {}, True),                    # ... except for a negated operator
    ("StringEqualsIfExists", "sms", {}, True),
    ("Null", "true", {}, True),
    ("Null", "false", {"k": "v"}, True),
    ("StringLike", "hem*", {"k": "hembesok"}, True),
    ("StringNotLike", "hem*", {"k": "hembesok"}, False),
    ("ForAnyValue:StringEquals", ["a", "b"], {"k": ["c", "b"]}, True),
    ("ForAllValues:StringEquals", ["a", "b"], {"k": ["a", "c"]}, False),
    ("ArnLike", "arn:aws:sqs:*:*:Replan*", {"k": "arn:aws:sqs:eu-north-1:0:ReplanQueue.fifo"}, True),
])
def test_condition_operators_follow_iams_rules(operator, expected, context, holds):
    assert iam._condition_holds(operator, "k", expected, context) is holds


def test_an_unknown_condition_operator_is_refused_rather_than_ignored():
    with pytest.raises(NotImplementedError):
        iam._condition_holds("NumericLessThan", "k", "3", {"k": "2"})


def test_every_function_policy_expands_and_resolves():
    from devstack import template as tpl
    for fid in tpl.functions():
        for s in iam.policy_statements(fid):
            text = repr(s)
            assert "Ref" not in text and "Fn::" not in text and "${" not in text, (fid, s)


def test_the_location_function_reaches_only_the_live_route_items():
    """LocationFunction's policy is conditioned on dynamodb:LeadingKeys LIVE#*: its own items are
    allowed, any other OpsTable item (visit events, the outbox) or a Query is denied."""
    live = {"TableName": "OpsTable", "Key": {"pk": {"S": "LIVE#stockholm#2026-12-01"}, "sk": {"S": "ROUTE#doc-1"}}}
    other = {"TableName": "OpsTable", "Key": {"pk": {"S": "VISIT#bk-1"}, "sk": {"S": "EVENT#arrived"}}}
    assert _decide("LocationFunction", "dynamodb", "GetItem", live) == {"allow"}
    assert _decide("LocationFunction", "dynamodb", "PutItem", {"TableName": "OpsTable", "Item": live["Key"]}) == {"allow"}
    assert _decide("LocationFunction", "dynamodb", "GetItem", other) == {"implicit_deny"}
    assert _decide("LocationFunction", "dynamodb", "PutItem", {"TableName": "OpsTable", "Item": other["Key"]}) \
        == {"implicit_deny"}
    query = {"TableName": "OpsTable", "KeyConditionExpression": "#0 = :0", "ExpressionAttributeNames": {"#0": "pk"},
             "ExpressionAttributeValues": {":0": {"S": "LIVE#stockholm#2026-12-01"}}}
    assert _decide("LocationFunction", "dynamodb", "Query", query) == {"implicit_deny"}
    assert iam.authorization_requests("dynamodb", "Query", query)[0].context == {
        "dynamodb:LeadingKeys": ["LIVE#stockholm#2026-12-01"]}
    assert _decide("LocationFunction", "dynamodb", "GetItem", {**live, "TableName": "BookingsTable"}) == {"implicit_deny"}
