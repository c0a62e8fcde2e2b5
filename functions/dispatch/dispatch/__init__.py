"""The dispatch function: optimizer, plans, routes, visit events."""
