"""Schemathesis hooks for `cargo xtask test` (see xtask/src/schemathesis.rs).

Two rewrites of generated subscriptions (`POST /v1/subscriptions`, `/swap`):

- Random base64 is never a point on the P-256 curve, so no generated
  subscription would ever be stored and the routes behind one (lookup,
  topics, swap, delete, reached through the OpenAPI links) would only answer
  404. A well-formed `keys.p256dh` becomes a real point; malformed ones stay,
  so their refusal is still exercised.
- The server's delivery workers push to stored endpoints when `/v1/notify` is
  fuzzed: an endpoint the server could accept is moved to the reserved
  `.invalid` domain (RFC 6761: never resolves), so a test run sends nothing
  to hosts that happen to exist. Endpoints that are not https are left alone:
  the server refuses them.
"""

import hashlib
import re

import schemathesis

# RFC 8291 Appendix A's user agent public key.
P256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
WELL_FORMED_P256DH = re.compile(r"B[A-P][A-Za-z0-9_+/-]{84}[AEIMQUYcgkosw048]=?")
ROUTES = {("POST", "/v1/subscriptions"), ("POST", "/v1/subscriptions/swap")}
# What URL parsers drop before reading the scheme (WHATWG URL: C0 controls and
# space around it, tab and newline anywhere).
IGNORED = re.compile(r"[\x00-\x20\x7f]")


def harmless(endpoint):
    if not IGNORED.sub("", endpoint).lower().startswith("https:"):
        return endpoint
    digest = hashlib.sha256(endpoint.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"https://push.invalid/send/{digest}"


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if operation is None or (operation.method.upper(), operation.path) not in ROUTES:
        return body
    subscription = body.get("subscription") if isinstance(body, dict) else None
    if not isinstance(subscription, dict):
        return body
    if isinstance(subscription.get("endpoint"), str):
        subscription["endpoint"] = harmless(subscription["endpoint"])
    keys = subscription.get("keys")
    if isinstance(keys, dict) and isinstance(keys.get("p256dh"), str) and WELL_FORMED_P256DH.fullmatch(keys["p256dh"]):
        keys["p256dh"] = P256DH
    return body
