"""Powertools' idempotency record (IdempotencyTable), as a model so a booking's transaction can
complete it (booking.idempotency)."""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from homevisits.persistence.base import meta


class IdempotencyRecordModel(Model):
    """Powertools' record layout (attribute names are DynamoDBPersistenceLayer's defaults)."""

    Meta = meta("IdempotencyTable")

    id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute(null=True)
    expiration = NumberAttribute(null=True)
    data = UnicodeAttribute(null=True)
