// An independent FAPI-style client in Node (panva's openid-client v6): private_key_jwt client
// authentication, a pushed authorization request (RFC 9126) carrying a DPoP proof, the code
// flow with PKCE S256, state and nonce, the code redeemed with DPoP (RFC 9449) and the ID
// token validated by openid-client itself, then UserInfo with the DPoP-bound access token.
//
// usage: node openid_client_fapi.mjs ISSUER CLIENT_ID KID PKCS8_BASE64 REDIRECT_URI USERNAME PASSWORD
// The client's P-256 private key comes as base64 PKCS#8 (the test registered its public half).
// Prints one JSON line with what it verified; exits non-zero on any failure.

import * as client from 'openid-client';

import { check, report, signInAndAllow } from './browser.mjs';

const usage =
  'usage: openid_client_fapi.mjs ISSUER CLIENT_ID KID PKCS8_BASE64 REDIRECT_URI USERNAME PASSWORD';

async function main(argv) {
  check(argv.length === 7, usage);
  const [issuer, clientId, kid, pkcs8, redirectUri, username, password] = argv;
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(issuer).hostname);
  const options = loopback ? { execute: [client.allowInsecureRequests] } : {};
  const key = await crypto.subtle.importKey(
    'pkcs8',
    Buffer.from(pkcs8, 'base64'),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );

  const config = await client.discovery(
    new URL(issuer),
    clientId,
    // The client is registered under the FAPI 2.0 profile: its ID tokens are PS256.
    { redirect_uris: [redirectUri], response_types: ['code'], id_token_signed_response_alg: 'PS256' },
    client.PrivateKeyJwt({ key, kid }),
    options,
  );
  const metadata = config.serverMetadata();
  check(metadata.pushed_authorization_request_endpoint, 'no PAR endpoint in the metadata');
  check(
    metadata.dpop_signing_alg_values_supported?.includes('ES256'),
    'ES256 DPoP proofs not advertised',
  );
  client.enableNonRepudiationChecks(config);

  const dpopKeys = await client.randomDPoPKeyPair('ES256');
  const dpop = client.getDPoPHandle(config, dpopKeys);
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(
    config,
    {
      redirect_uri: redirectUri,
      scope: 'openid profile',
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    },
    { DPoP: dpop },
  );
  // Only client_id and the request_uri travel through the browser.
  const sent = [...authorizationUrl.searchParams.keys()].sort();
  check(sent.join(',') === 'client_id,request_uri', `the browser carried ${sent}`);

  const callback = await signInAndAllow(issuer, authorizationUrl, username, password);
  check(callback.startsWith(redirectUri), `redirected to ${callback}, not to ${redirectUri}`);
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(callback),
    {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    },
    undefined,
    { DPoP: dpop },
  );
  const claims = tokens.claims();
  check(claims, 'no ID token');
  check(tokens.token_type.toLowerCase() === 'dpop', `token_type ${tokens.token_type}`);
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, {
    DPoP: dpop,
  });
  const jwk = await crypto.subtle.exportKey('jwk', dpopKeys.publicKey);

  return {
    sub: claims.sub,
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    dpop_jwk: { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y },
    userinfo,
  };
}

await report(main);
