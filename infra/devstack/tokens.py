"""Local stand-in for Cognito: an RSA key pair kept in the stack's state dir, tokens signed with it,
and the verification the HTTP API's JWT authorizer performs (signature, issuer, audience, expiry)."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.paths import state_dir

ISSUER = "https://cognito-idp.local.invalid/homevisits-local"
AUDIENCE = "homevisits-local-client"
KID = "local-1"


def _key_path() -> Path:
    return state_dir() / "jwt-signing-key.pem"


_cache: dict = {}


def signing_key() -> rsa.RSAPrivateKey:
    """The local signing key (created on first use), parsed once per process and key file."""
    path = _key_path()
    if str(path) in _cache and path.exists():
        return _cache[str(path)]
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        tmp.chmod(0o600)
        tmp.replace(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    _cache[str(path)] = key
    return key


def issue(role: str, sub: str, region: str | None = None, ttl_s: int = 3600, now: float | None = None,
          personal_number: str | None = None) -> str:
    """A token as Cognito would issue it after e-ID/SITHS login, with the role (and region for staff)
    and, for a BankID login, the verified personal number (`custom:personal_number`)."""
    now = int(now if now is not None else time.time())
    claims = {"sub": sub, "role": role, "iss": ISSUER, "aud": AUDIENCE, "token_use": "id",
              "iat": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex}
    if region:
        claims["region"] = region
    if personal_number:
        claims["custom:personal_number"] = personal_number
    return jwt.encode(claims, signing_key(), algorithm="RS256", headers={"kid": KID})


class InvalidToken(Exception):
    pass


def verify(token: str) -> dict:
    """Claims of a valid token; InvalidToken otherwise (bad signature, issuer, audience or expired)."""
    try:
        return jwt.decode(token, signing_key().public_key(), algorithms=["RS256"], audience=AUDIENCE,
                          issuer=ISSUER, options={"require": ["exp", "iat", "sub", "iss", "aud"]})
    except jwt.PyJWTError as e:
        raise InvalidToken(str(e)) from e
