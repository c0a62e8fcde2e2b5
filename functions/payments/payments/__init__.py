"""The payments function (bounded context)."""
