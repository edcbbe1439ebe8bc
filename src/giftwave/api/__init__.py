"""HTTP API: FastAPI routers, request/response models, errors as RFC 9457 problem+json."""
