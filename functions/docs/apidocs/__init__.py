"""The API documentation function: OpenAPI document and Swagger UI."""
