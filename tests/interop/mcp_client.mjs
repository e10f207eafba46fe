// An MCP client, the TypeScript SDK's own, meeting an MCP server that Castellan protects
// (tests/api/mcp.rs): it finds Castellan through the server's RFC 9728 metadata, registers
// itself (RFC 7591), runs the code flow with PKCE for the server's resource, and calls a tool
// with the token. Nothing here knows Castellan beyond what the SDK discovers.
//
//   node mcp_client.mjs MCP_URL USERNAME PASSWORD
//
// Prints one JSON line: the registered client id, the authorization request's resource and
// scope, the tool's answer and the access token.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { check, report, signInAndAllow } from './browser.mjs';

// A native app's loopback callback; nothing listens there: the user's browser is played by
// signInAndAllow, which stops at the redirect to it and hands back its URL.
const REDIRECT = 'http://127.0.0.1:8976/callback';

// Everything the SDK asks its host application to keep, kept in memory.
class InMemoryProvider {
  get redirectUrl() {
    return REDIRECT;
  }

  get clientMetadata() {
    return {
      client_name: 'MCP SDK interop test',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() {
    return this.client;
  }

  saveClientInformation(client) {
    this.client = client;
  }

  tokens() {
    return this.saved;
  }

  saveTokens(tokens) {
    this.saved = tokens;
  }

  redirectToAuthorization(url) {
    this.authorizationUrl = url;
  }

  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }

  codeVerifier() {
    return this.verifier;
  }
}

async function main([mcpUrl, username, password]) {
  const provider = new InMemoryProvider();
  const connect = async () => {
    const client = new Client({ name: 'castellan-interop', version: '0.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
    await client.connect(transport);
    return { client, transport };
  };

  // Without a token the server answers 401; the SDK discovers, registers and asks the user.
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  try {
    await new Client({ name: 'castellan-interop', version: '0.0.0' }).connect(transport);
    throw new Error('the MCP server let an unauthenticated client in');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  check(provider.client?.client_id, 'the SDK did not register a client');
  check(provider.authorizationUrl, 'the SDK did not send the user to authorize');
  const authorization = provider.authorizationUrl;
  const issuer = authorization.origin;
  const callback = await signInAndAllow(issuer, authorization, username, password);
  const code = new URL(callback).searchParams.get('code');
  check(code, `no code in ${callback}`);
  await transport.finishAuth(code);
  check(provider.saved?.access_token, 'the SDK did not redeem the code');

  const { client } = await connect();
  const tools = await client.listTools();
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  await client.close();
  return {
    client_id: provider.client.client_id,
    resource: authorization.searchParams.get('resource'),
    scope: authorization.searchParams.get('scope'),
    code_challenge_method: authorization.searchParams.get('code_challenge_method'),
    tools: tools.tools.map((t) => t.name),
    answer: result.content?.[0]?.text,
    access_token: provider.saved.access_token,
  };
}

report(main);
