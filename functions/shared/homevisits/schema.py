"""The base of the HTTP API's request and response bodies (pydantic)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """A pydantic model whose validator is built when first used, not at import: a cold start
    builds only the schemas of the route it serves (a GET never builds the booking body's)."""
    model_config = ConfigDict(defer_build=True)
