"""An independent relying party in Python (authlib): discovery, authorization code flow with
PKCE and nonce, ID token verification against the JWKS, UserInfo.

usage: authlib_rp.py ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD [SCOPE]
(SCOPE defaults to "openid profile email").
Prints one JSON line with what it verified; exits non-zero on any failure.
"""
import html
import json
import re
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

if len(sys.argv) not in (7, 8):
    sys.exit(__doc__)
issuer, client_id, client_secret, redirect_uri, username, password = sys.argv[1:7]
scope = sys.argv[7] if len(sys.argv) > 7 else "openid profile email"

metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
assert metadata["issuer"] == issuer, metadata["issuer"]
keys = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())

session = OAuth2Session(
    client_id,
    client_secret,
    scope=scope,
    redirect_uri=redirect_uri,
    code_challenge_method="S256",
    token_endpoint_auth_method="client_secret_basic",
)
code_verifier = generate_token(48)
nonce = generate_token(20)
url, state = session.create_authorization_url(
    metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
)

# The user's browser: follow our redirects, sign in, allow.
browser = requests.Session()


def field(page, name):
    match = re.search(r'name="%s" value="([^"]*)"' % name, page)
    assert match, "no %s field" % name
    return html.unescape(match.group(1))


def follow(response):
    while response.status_code in (302, 303) and response.headers["Location"].startswith(("/", issuer)):
        response = browser.get(urljoin(issuer + "/", response.headers["Location"]), allow_redirects=False)
    return response


page = follow(browser.get(url, allow_redirects=False)).text
response = follow(
    browser.post(
        issuer + "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": field(page, "csrf_token"),
            "return_to": field(page, "return_to"),
        },
        allow_redirects=False,
    )
)
if response.status_code == 200:
    response = browser.post(
        issuer + "/consent",
        data={
            "csrf_token": field(response.text, "csrf_token"),
            "request": field(response.text, "request"),
            "decision": "allow",
        },
        allow_redirects=False,
    )
callback = response.headers["Location"]
assert callback.startswith(redirect_uri), callback
query = parse_qs(urlparse(callback).query)
assert query["state"] == [state]
assert query["iss"] == [issuer]

token = session.fetch_token(
    metadata["token_endpoint"],
    authorization_response=callback,
    code_verifier=code_verifier,
)
claims = jwt.decode(
    token["id_token"],
    keys,
    claims_cls=CodeIDToken,
    claims_options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}},
    claims_params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
)
claims.validate(leeway=5)  # exp, iat, nonce, aud, at_hash

response = session.get(metadata["userinfo_endpoint"], timeout=10)
response.raise_for_status()
userinfo = response.json()
assert userinfo["sub"] == claims["sub"], (userinfo, claims)
print(
    json.dumps(
        {
            "sub": claims["sub"],
            "email": userinfo.get("email"),
            "at_hash": claims.get("at_hash"),
            "scope": token.get("scope"),
            "access_token": token["access_token"],
            "claims": dict(claims),
            "userinfo": userinfo,
        }
    )
)
