"""PynamoDB models and repositories: the only place that imports pynamodb.

One module per bounded context (booking.py, dispatch.py, payments.py, ops.py); table names from
`homevisits.settings.table_name`, i.e. from the template."""
