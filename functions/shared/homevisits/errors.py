"""Errors of the domain, each with a machine-readable code and the HTTP status it maps to.

Mapped to HTTP in exactly one place (`homevisits.http.install_error_handlers`). Codes are part of
the API: clients switch on them, so never rename one.
"""
from __future__ import annotations


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details or {}

    def to_body(self) -> dict:
        body: dict[str, dict] = {"error": {"code": self.code, "message": self.message}}
        if self.details:
            body["error"]["details"] = self.details
        return body


class InvalidRequest(DomainError):
    code, status = "invalid_request", 400


class Unauthorized(DomainError):
    code, status = "unauthorized", 401


class Forbidden(DomainError):
    code, status = "forbidden", 403


class NotFound(DomainError):
    code, status = "not_found", 404


class NotServed(DomainError):
    code, status = "not_served", 404


class RegionNotOpen(DomainError):
    code, status = "region_not_open", 409


class WindowNotBookable(DomainError):
    code, status = "window_not_bookable", 422


class WindowFull(DomainError):
    code, status = "window_full", 409


class InvalidPersonalNumber(DomainError):
    code, status = "invalid_personal_number", 422


class PatientTooYoung(DomainError):
    code, status = "patient_too_young", 422


class NotAllowedToBookFor(DomainError):
    code, status = "not_allowed_to_book_for", 422


class AlreadyBooked(DomainError):
    """The person the visit is for already has an open booking that day (details: its booking_id)."""
    code, status = "already_booked", 409


class AccountDayLimit(DomainError):
    """The account (the patient signed in, whoever the visits are for) already has the configured
    number of open bookings that day (booking.max_open_bookings_per_account_day; details: limit, date)."""
    code, status = "account_day_limit", 409


class DayOver(DomainError):
    """A past region-day: its plan is the record of what happened and is never re-planned."""
    code, status = "day_over", 409


class InvalidTransition(DomainError):
    code, status = "invalid_transition", 409


class Conflict(DomainError):
    code, status = "conflict", 409


class IdempotencyKeyRequired(DomainError):
    code, status = "idempotency_key_required", 400


class RequestInProgress(DomainError):
    code, status = "request_in_progress", 409


class PaymentDeclined(DomainError):
    code, status = "payment_declined", 402
    payment_intent_id: str | None = None  # the declined PaymentIntent, when Stripe names it
    stripe_code: str | None = None


class PaymentProviderUnavailable(DomainError):
    code, status = "payment_provider_unavailable", 503


class InvalidSignature(DomainError):
    code, status = "invalid_signature", 400


class InvalidEvent(DomainError):
    """A webhook that is authentic but not an event (e.g. its JSON is not an object)."""
    code, status = "invalid_event", 400


class BookingNotPayable(DomainError):
    code, status = "booking_not_payable", 409


class BookingExpired(DomainError):
    """The booking is gone: its time to be paid ran out and its place was given back."""
    code, status = "booking_expired", 410


class PaymentRejected(DomainError):
    """The payment provider refused a request it should have accepted (a bug or a state clash)."""
    code, status = "payment_rejected", 502
    stripe_code: str | None = None


class BusyTryAgain(DomainError):
    code, status = "busy_try_again", 409


class ShiftChangeStrandsBookings(DomainError):
    code, status = "shift_change_strands_bookings", 409


class VisitUnderWay(DomainError):
    code, status = "visit_under_way", 409


class TooLateToReschedule(DomainError):
    code, status = "too_late_to_reschedule", 409


class InvalidPhoneNumber(DomainError):
    code, status = "invalid_phone_number", 422


class AddressOutsideRegion(DomainError):
    code, status = "address_outside_region", 422


class ServiceUnavailable(DomainError):
    """A dependency (DynamoDB, the event bus, SMS) is down or not answering: retry later."""
    code, status = "service_unavailable", 503


RETRY_AFTER_S = 5  # what a 503 asks clients to wait (seconds) before trying again

# Error codes AWS answers when the service, not the request, is the problem (after botocore's retries).
_OUTAGE_CODES = {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
                 "InternalServerError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException"}


def dependency_outage(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps: PynamoDB's `cause`, Powertools' idempotency errors, chained
    exceptions) is a dependency being down, timing out or overloaded, rather than a bug or a refusal."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    seen: set[int] = set()
    todo: list = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (BotoConnectionError, HTTPClientError, ConnectionError, TimeoutError)):
            return True
        if isinstance(e, ClientError) and e.response.get("Error", {}).get("Code") in _OUTAGE_CODES:
            return True
        todo += [e.__cause__, e.__context__, getattr(e, "cause", None), *e.args]
    return False
