"""HTTP API: routers, request/response schemas, dependencies and error mapping."""
