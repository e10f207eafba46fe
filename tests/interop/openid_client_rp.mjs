// An independent relying party in Node (panva's openid-client v6): discovery, authorization code
// flow with PKCE S256, state and nonce, the authorization response's `iss` (RFC 9207), the code
// redeemed and the ID token validated by openid-client itself (signature against the JWKS,
// iss, aud, exp, iat, nonce), then UserInfo through openid-client's fetchUserInfo.
//
// usage: node openid_client_rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD [SCOPE]
// Prints one JSON line with what it verified; exits non-zero on any failure.
// The tests run on http://127.0.0.1:port, hence `allowInsecureRequests` (loopback only).

import { createHash } from 'node:crypto';
import * as client from 'openid-client';

import { check, report, signInAndAllow } from './browser.mjs';

const usage =
  'usage: openid_client_rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD [SCOPE]';

async function main(argv) {
  check(argv.length === 6 || argv.length === 7, usage);
  const [issuer, clientId, clientSecret, redirectUri, username, password] = argv;
  const scope = argv[6] ?? 'openid profile email';
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(issuer).hostname);
  const options = loopback ? { execute: [client.allowInsecureRequests] } : {};

  const config = await client.discovery(
    new URL(issuer),
    clientId,
    { redirect_uris: [redirectUri], response_types: ['code'] },
    client.ClientSecretBasic(clientSecret),
    options,
  );
  const metadata = config.serverMetadata();
  check(metadata.issuer === issuer, `discovered issuer ${metadata.issuer}, expected ${issuer}`);
  // Verify the ID token's signature against the JWKS too (openid-client skips it by default
  // for tokens fetched over TLS from the token endpoint, OpenID Connect Core §3.1.3.7 step 6).
  client.enableNonRepudiationChecks(config);

  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  });

  const callback = await signInAndAllow(issuer, authorizationUrl, username, password);
  check(callback.startsWith(redirectUri), `redirected to ${callback}, not to ${redirectUri}`);

  // Checks state, `iss` (the server advertises authorization_response_iss_parameter_supported),
  // then redeems the code with the PKCE verifier and validates the ID token and its nonce.
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  check(claims, 'no ID token');
  check(tokens.token_type.toLowerCase() === 'bearer', `token_type ${tokens.token_type}`);
  // at_hash (OpenID Connect Core §3.1.3.6): left half of SHA-256 of the access token.
  const digest = createHash('sha256').update(tokens.access_token, 'ascii').digest();
  const atHash = digest.subarray(0, digest.length / 2).toString('base64url');
  check(claims.at_hash === atHash, `at_hash ${claims.at_hash}, expected ${atHash}`);

  // fetchUserInfo checks that the response's `sub` is the ID token's.
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

  return {
    sub: claims.sub,
    email: userinfo.email ?? null,
    at_hash: claims.at_hash,
    scope: tokens.scope ?? null,
    access_token: tokens.access_token,
    claims,
    userinfo,
  };
}

await report(main);
