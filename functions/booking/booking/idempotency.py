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


class TransactionalStore(DynamoDBPersistenceLayer):
    """DynamoDBPersistenceLayer whose COMPLETED update can ride in the caller's transaction.

    Per thread: `_put_record` remembers the key it just wrote (INPROGRESS); `transaction_items`
    gives the update that completes it; `completed_in_transaction` marks it done, and the
    `_update_record` Powertools then calls for that key is skipped."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._local = threading.local()

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
