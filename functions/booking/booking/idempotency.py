"""Powertools idempotency for POST /bookings, with the completed record written in the booking's
own transaction.

Powertools' DynamoDB persistence layer costs two writes around the function: a conditional PutItem
(the record, INPROGRESS) before and an UpdateItem (COMPLETED, with the response) after. A booking
already ends in one TransactWriteItems (booking + clinical note + region-day ledger), so this layer
lets that transaction carry the COMPLETED record too, and skips its own UpdateItem for that key.
The semantics stay Powertools': same key + same body -> the stored answer; same key + another body
-> IdempotencyValidationError; a failure before the commit deletes the INPROGRESS record (Powertools
does it) so a retry runs again. Anything else (a refusal, a replay answered from the booking) goes
through Powertools' own UpdateItem as before.
"""
from __future__ import annotations

import json
import threading

from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from homevisits.persistence.idempotency import IdempotencyRecordModel


class _NoClientYet:
    """Stands for the client until it is made (has no `meta`: Powertools' user-agent tag skips it)."""


class TransactionalStore(DynamoDBPersistenceLayer):
    """DynamoDBPersistenceLayer whose COMPLETED update can ride in the caller's transaction.

    Per thread: `_put_record` remembers the key it just wrote (INPROGRESS); `transaction_items`
    gives the update that completes it; `completed_in_transaction` marks it done, and the
    `_update_record` Powertools then calls for that key is skipped."""

    def __init__(self, *args, **kwargs):
        # The DynamoDB client is made on first use, not at import: building one loads botocore's
        # service model (~100-200 ms of a cold start) and only POST /bookings needs it.
        self._client, self._client_lock, self._client_ready = None, threading.Lock(), False
        self._boto_config = kwargs.get("boto_config")
        super().__init__(*args, boto3_client=_NoClientYet(), **kwargs)
        self._client_ready = True
        self._local = threading.local()

    @property
    def client(self):
        if not self._client_ready:  # Powertools' __init__ tags the client: done once it exists
            return self._client
        with self._client_lock:
            if isinstance(self._client, _NoClientYet):
                import boto3
                from aws_lambda_powertools.shared.user_agent import register_feature_to_client
                self._client = boto3.session.Session().client("dynamodb", config=self._boto_config)
                register_feature_to_client(client=self._client, feature="idempotency")
        return self._client

    @client.setter
    def client(self, value) -> None:
        self._client = value

    def _put_record(self, data_record: DataRecord) -> None:
        self._local.in_progress = None
        self._local.done = None
        super()._put_record(data_record)
        self._local.in_progress = data_record.idempotency_key

    def transaction_items(self, result: dict) -> list:
        """[(record, actions)] completing the record now in progress with `result`; [] if none."""
        key = getattr(self._local, "in_progress", None)
        if key is None or self.sort_key_attr or self.key_attr != "id":
            return []
        data = json.dumps(result, cls=Encoder, sort_keys=True)  # what save_success would store
        record = IdempotencyRecordModel(id=key)
        return [(record, [IdempotencyRecordModel.status.set("COMPLETED"),
                          IdempotencyRecordModel.data.set(data),
                          IdempotencyRecordModel.expiration.set(self._get_expiry_timestamp())])]

    def completed_in_transaction(self) -> None:
        self._local.done = getattr(self._local, "in_progress", None)

    def _update_record(self, data_record: DataRecord) -> None:
        if data_record.idempotency_key is not None and data_record.idempotency_key == getattr(self._local, "done", None):
            self._local.done = self._local.in_progress = None
            return  # written with the booking
        super()._update_record(data_record)

    def _delete_record(self, data_record: DataRecord) -> None:
        self._local.done = self._local.in_progress = None
        super()._delete_record(data_record)
