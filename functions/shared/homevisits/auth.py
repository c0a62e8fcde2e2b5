"""Who is calling: the claims the HTTP API's JWT authorizer verified, read from the event.

Handlers never verify tokens themselves (API Gateway did, or the local gateway in the same way);
they read `requestContext.authorizer.jwt.claims` and apply the role rules below.
"""
from __future__ import annotations

from dataclasses import dataclass

from homevisits.errors import Forbidden, Unauthorized

ROLES = ("patient", "clinician", "dispatcher")


# The claim carrying the personal number the identity provider verified (BankID through the user
# pool's federation maps it to this custom attribute).
PERSONAL_NUMBER_CLAIMS = ("custom:personal_number", "personal_number")


@dataclass(frozen=True)
class Caller:
    sub: str
    role: str
    region: str | None = None
    personal_number: str | None = None  # verified by e-ID, when the token carries it

    def require(self, *roles: str) -> "Caller":
        if self.role not in roles:
            raise Forbidden(f"this action needs the role {' or '.join(roles)}")
        return self

    def require_dispatcher_of(self, region: str) -> "Caller":
        self.require("dispatcher")
        if self.region != region:
            raise Forbidden("a dispatcher acts only in their own region", code="other_region")
        return self


def caller_from_event(raw_event: dict) -> Caller:
    """The verified caller of an API Gateway HTTP API (v2) event; Unauthorized when absent."""
    claims = (((raw_event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")
    if not claims or not claims.get("sub"):
        raise Unauthorized("a valid token is required")
    role = claims.get("role") or claims.get("custom:role")
    if role not in ROLES:
        raise Forbidden("the token carries no known role", code="unknown_role")
    region = claims.get("region") or claims.get("custom:region") or None
    pnr = next((str(claims[c]) for c in PERSONAL_NUMBER_CLAIMS if claims.get(c)), None)
    return Caller(sub=str(claims["sub"]), role=role, region=region, personal_number=pnr)
