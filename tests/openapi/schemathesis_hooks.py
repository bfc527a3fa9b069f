"""Schemathesis hooks for the conformance run of tests/api/openapi_tools.rs.

Two request bodies are binary media types schemathesis cannot serialise by itself: the
RFC 3161 query of POST /tsa (application/timestamp-query) and the RFC 3464 report of
POST /v1/bounces (message/delivery-status). Their generated values are sent as bytes.
"""

import schemathesis


@schemathesis.serializer("application/timestamp-query", "message/delivery-status")
def as_bytes(ctx, value):
    if isinstance(value, bytes):
        return value
    if value is None:
        return b""
    return str(value).encode("utf-8")
