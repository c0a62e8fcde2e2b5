"""The booking function (bounded context)."""
