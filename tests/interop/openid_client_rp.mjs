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

const usage =
  'usage: openid_client_rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD [SCOPE]';

function check(condition, message) {
  if (!condition) throw new Error(message);
}

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

// The user's browser: plain fetch, cookies kept by hand, our own redirects followed by hand;
// returns the Location of the first redirect that leaves the issuer (the client's callback).
async function signInAndAllow(issuer, authorizationUrl, username, password) {
  const cookies = new Map();
  const origin = new URL(issuer).origin;

  async function request(url, form) {
    const headers = {};
    if (cookies.size > 0) {
      headers.cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    }
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url, {
      method: form ? 'POST' : 'GET',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
      if (expired || value === '') cookies.delete(name);
      else cookies.set(name, value);
    }
    return response;
  }

  async function follow(response) {
    for (let hops = 0; hops < 10; hops += 1) {
      if (response.status !== 302 && response.status !== 303) return response;
      const target = new URL(response.headers.get('location'), issuer + '/');
      if (target.origin !== origin) return response;
      await response.body?.cancel();
      response = await request(target.href);
    }
    throw new Error('too many redirects');
  }

  let response = await follow(await request(authorizationUrl.href));
  check(response.status === 200, `authorization request: HTTP ${response.status}`);
  let page = await response.text();
  response = await follow(
    await request(new URL('/login', issuer).href, {
      username,
      password,
      csrf_token: field(page, 'csrf_token'),
      return_to: field(page, 'return_to'),
    }),
  );
  if (response.status === 200) {
    page = await response.text();
    response = await request(new URL('/consent', issuer).href, {
      csrf_token: field(page, 'csrf_token'),
      request: field(page, 'request'),
      decision: 'allow',
    });
  }
  check(response.status === 302 || response.status === 303, `no redirect: HTTP ${response.status}`);
  return response.headers.get('location');
}

// The value of the input `name` in an HTML page, unescaped.
function field(page, name) {
  const match = page.match(new RegExp(`name="${name}" value="([^"]*)"`));
  check(match, `no ${name} field`);
  return match[1].replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/gi, (_, ref) => {
    const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[ref.toLowerCase()];
    if (named) return named;
    const hex = ref[1] === 'x' || ref[1] === 'X';
    return String.fromCodePoint(parseInt(ref.slice(hex ? 2 : 1), hex ? 16 : 10));
  });
}

try {
  console.log(JSON.stringify(await main(process.argv.slice(2))));
} catch (error) {
  console.error(error);
  if (error?.cause) console.error('cause:', JSON.stringify(error.cause, null, 2));
  process.exit(1);
}
