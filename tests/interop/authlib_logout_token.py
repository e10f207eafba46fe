"""An independent relying party's check of a back-channel logout token (OpenID Connect
Back-Channel Logout 1.0 §2.6), in Python with authlib: discovery says back-channel logout is
supported, the token verifies with the published JWKS, and its claims are a logout token's.

usage: authlib_logout_token.py ISSUER CLIENT_ID LOGOUT_TOKEN
Prints one JSON line with the verified header and claims; exits non-zero on any failure.
"""
import base64
import json
import sys
import time

import requests
from authlib.jose import JsonWebKey, jwt

EVENT = "http://schemas.openid.net/event/backchannel-logout"

if len(sys.argv) != 4:
    sys.exit(__doc__)
issuer, client_id, token = sys.argv[1:4]

metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
assert metadata["issuer"] == issuer, metadata["issuer"]
assert metadata.get("backchannel_logout_supported") is True, "backchannel_logout_supported"
assert metadata.get("backchannel_logout_session_supported") is True
keys = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())

header_b64 = token.split(".")[0]
header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
# §2.6 step 2 and §4.1: explicitly typed, so no other JWT passes for a logout token.
assert header.get("typ") == "logout+jwt", header
assert header.get("alg") in metadata["id_token_signing_alg_values_supported"], header

# §2.6 step 3: the signature, with the OP's keys (authlib picks the key by kid).
claims = jwt.decode(
    token,
    keys,
    claims_options={
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "iat": {"essential": True},
        "exp": {"essential": True},
        "jti": {"essential": True},
    },
)
claims.validate(now=int(time.time()), leeway=5)
# §2.6 steps 5–8: sub or sid (both here), the events member, no nonce.
assert claims.get("sub") or claims.get("sid"), claims
assert claims["events"] == {EVENT: {}}, claims["events"]
assert "nonce" not in claims, "a logout token must not carry a nonce"
print(json.dumps({"header": header, "claims": dict(claims)}))
