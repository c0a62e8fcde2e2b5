"""Service configuration: regions, visit types, fees (one file: service.json)."""
