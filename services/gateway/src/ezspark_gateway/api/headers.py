"""Security headers on every response (added by ``middleware.EdgeMiddleware``)."""

from __future__ import annotations

# The pages load scripts, styles and images from the gateway only, and may not be framed.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# /docs and /redoc (api/docs.py): scripts from the gateway only, never inline; ReDoc
# injects <style> elements and runs its search in a blob: worker.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HSTS = b"max-age=31536000; includeSubDomains"
# Encoded once: every answer carries them.
_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
_PAGES = ((b"content-security-policy", PAGE_CSP.encode()), *_COMMON)
_DOCS = ((b"content-security-policy", DOCS_CSP.encode()), *_COMMON)
# Answers carrying secrets (tokens, broker credentials) must not sit in any cache.
_NO_STORE_PREFIXES = ("/api/auth/", "/api/evaluators")


def security_headers(path: str, https: bool, existing: set[bytes]) -> list[tuple[bytes, bytes]]:
    """The security headers an answer on ``path`` gets, less those it already has
    (``existing``: its header names, lower case): CSP with frame-ancestors, nosniff,
    Referrer-Policy, HSTS when ``https`` (over TLS, or configured for a TLS-terminating
    proxy that does not say so in X-Forwarded-Proto), no-store on credential answers."""
    extra = list(_DOCS if path in ("/docs", "/redoc") else _PAGES)
    if https:
        extra.append((b"strict-transport-security", HSTS))
    secret = path.startswith(_NO_STORE_PREFIXES) or b"set-cookie" in existing
    if secret or path in ("/login", "/signup"):
        extra.append((b"cache-control", b"no-store"))
    return [h for h in extra if h[0] not in existing]
