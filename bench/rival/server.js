// node-oidc-provider as castellan-bench's rival (`castellan-bench --rival`): a node `cluster` of
// RIVAL_WORKERS workers (default 2) on 127.0.0.1:RIVAL_PORT, sharing its tokens through Redis.
//
// The configuration mirrors what the bench asks of Castellan, as favourably to oidc-provider as
// is still correct:
// - one confidential client (client_secret_basic) allowed client_credentials and scope `bench`;
// - a client_credentials request naming the resource RIVAL_RESOURCE gets an RS256-signed JWT
//   access token (resource indicators with accessTokenFormat 'jwt'): stateless, like Castellan's;
// - one without a resource gets an opaque token stored in Redis: oidc-provider refuses to
//   introspect its own JWT access tokens (unsupported_token_type), so the introspection
//   scenarios introspect opaque tokens, looked up in Redis by whichever worker is asked;
// - Redis (RIVAL_REDIS_URL) is oidc-provider's documented way to share state between processes:
//   with the default in-memory adapter a token minted by one worker is unknown to the other;
// - one RSA-2048 key made at start by the primary and handed to every worker, so every worker
//   signs with, and publishes, the same key;
// - no refresh tokens or offline_access (so introspection needs no refresh-token lookup), no
//   request logging, NODE_ENV=production (set by the bench).
//
// When every worker listens, the primary prints one JSON line on stdout: the client, the
// resource and the endpoint paths. SIGTERM stops the workers, then the primary, which clears
// its Redis keys (as it does at start) on the way out.

import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import process from 'node:process';

import Redis from 'ioredis';
import Provider, { errors } from 'oidc-provider';

const HOST = '127.0.0.1';
const PORT = Number(process.env.RIVAL_PORT ?? 3000);
const WORKERS = Number(process.env.RIVAL_WORKERS ?? 2);
const REDIS_URL = process.env.RIVAL_REDIS_URL ?? 'redis://127.0.0.1:6379';
// Every key this server writes starts with this, so a start can clear its own keys only.
const PREFIX = process.env.RIVAL_REDIS_PREFIX ?? 'castellan-bench-rival:';
const RESOURCE = process.env.RIVAL_RESOURCE ?? 'https://api.bench.invalid/';
const CLIENT_ID = 'bench';
const SCOPE = 'bench';
const TOKEN_TTL = 3600;
// How long the workers get to close their connections after SIGTERM before they are killed.
const STOP_GRACE_MS = 5000;

if (!Number.isInteger(PORT) || !Number.isInteger(WORKERS) || WORKERS < 1) {
  throw new Error('RIVAL_PORT and RIVAL_WORKERS must be integers, RIVAL_WORKERS at least 1');
}

const ROUTES = {
  token: '/token',
  introspection: '/token/introspection',
  jwks: '/jwks',
};

/** Deletes every key under PREFIX (never anything else), in batches. */
async function clearOwnKeys(redis) {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    if (keys.length > 0) {
      deleted += await redis.unlink(...keys);
    }
    cursor = next;
  } while (cursor !== '0');
  return deleted;
}

/** The settings every worker must share: the signing key and the client's secret. */
function sharedSettings() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };
  return {
    jwk,
    clientSecret: randomBytes(32).toString('base64url'),
    cookieKey: randomBytes(32).toString('base64url'),
  };
}

function oidcProviderVersion() {
  const url = new URL('./node_modules/oidc-provider/package.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

/** Clears this server's keys with a connection of its own; the count cleared. */
async function clearOwnKeysOnce() {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    return await clearOwnKeys(redis);
  } finally {
    await redis.quit();
  }
}

async function primary() {
  // Keys a killed run left behind would otherwise linger until their tokens expire.
  const cleared = await clearOwnKeysOnce();
  if (cleared > 0) {
    console.error(`cleared ${cleared} keys left under ${PREFIX}`);
  }

  const settings = sharedSettings();
  let stopping = false;
  let listening = 0;
  for (let i = 0; i < WORKERS; i += 1) {
    cluster.fork({ RIVAL_SETTINGS: JSON.stringify(settings) });
  }
  cluster.on('listening', () => {
    listening += 1;
    if (listening === WORKERS) {
      console.log(JSON.stringify({
        ready: true,
        issuer: `http://${HOST}:${PORT}`,
        workers: WORKERS,
        oidc_provider: oidcProviderVersion(),
        node: process.version,
        client_id: CLIENT_ID,
        client_secret: settings.clientSecret,
        scope: SCOPE,
        resource: RESOURCE,
        token_path: ROUTES.token,
        introspection_path: ROUTES.introspection,
        jwks_path: ROUTES.jwks,
        discovery_path: '/.well-known/openid-configuration',
      }));
    }
  });
  // A worker that dies under load would silently halve the rival: stop everything instead.
  // While stopping, the primary exits once the last worker has (not merely disconnected), so
  // no worker outlives it.
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} exited (${signal ?? code}); stopping`);
      for (const other of Object.values(cluster.workers)) other.process.kill('SIGKILL');
      process.exit(1);
    }
    if (Object.keys(cluster.workers).length === 0) {
      clearOwnKeysOnce().then(() => process.exit(0), (error) => {
        console.error(`cannot clear ${PREFIX} keys: ${error.message}`);
        process.exit(1);
      });
    }
  });
  process.on('SIGTERM', () => {
    stopping = true;
    setTimeout(() => {
      for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGKILL');
    }, STOP_GRACE_MS).unref();
    cluster.disconnect();
  });
}

/**
 * oidc-provider's storage interface on Redis: each model's payloads under
 * `PREFIX<Model>:<id>`, expiring with the token, and the lookups by grant, user code and uid
 * through index keys. Only what a payload needs is written: a client_credentials token is one SET.
 */
function redisAdapter(redis) {
  const grantKey = (grantId) => `${PREFIX}grant:${grantId}`;
  const userCodeKey = (userCode) => `${PREFIX}userCode:${userCode}`;
  const uidKey = (uid) => `${PREFIX}uid:${uid}`;

  return class RedisAdapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${PREFIX}${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const expiry = expiresIn ? ['EX', expiresIn] : [];
      const { grantId, userCode, uid } = payload;
      if (!grantId && !userCode && !uid) {
        await redis.set(key, JSON.stringify(payload), ...expiry);
        return;
      }
      const multi = redis.multi().set(key, JSON.stringify(payload), ...expiry);
      if (grantId) {
        multi.rpush(grantKey(grantId), key);
        // The index lives as long as its longest-lived entry: GT lengthens, NX sets the first TTL.
        if (expiresIn) multi.expire(grantKey(grantId), expiresIn, 'GT').expire(grantKey(grantId), expiresIn, 'NX');
      }
      if (userCode) multi.set(userCodeKey(userCode), id, ...expiry);
      if (uid) multi.set(uidKey(uid), id, ...expiry);
      await multi.exec();
    }

    async find(id) {
      const stored = await redis.get(this.key(id));
      return stored ? JSON.parse(stored) : undefined;
    }

    async findByUserCode(userCode) {
      const id = await redis.get(userCodeKey(userCode));
      return id ? this.find(id) : undefined;
    }

    async findByUid(uid) {
      const id = await redis.get(uidKey(uid));
      return id ? this.find(id) : undefined;
    }

    async consume(id) {
      const stored = await this.find(id);
      if (!stored) return;
      stored.consumed = Math.floor(Date.now() / 1000);
      await redis.set(this.key(id), JSON.stringify(stored), 'KEEPTTL');
    }

    async destroy(id) {
      await redis.unlink(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const keys = await redis.lrange(grantKey(grantId), 0, -1);
      await redis.unlink(...keys, grantKey(grantId));
    }
  };
}

function configuration(settings, redis) {
  return {
    adapter: redisAdapter(redis),
    clients: [{
      client_id: CLIENT_ID,
      client_secret: settings.clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPE,
    }],
    cookies: { keys: [settings.cookieKey] },
    jwks: { keys: [settings.jwk] },
    // No offline_access: so no refresh_token grant, and introspection looks up two kinds, not three.
    scopes: ['openid', SCOPE],
    routes: ROUTES,
    ttl: { ClientCredentials: TOKEN_TTL },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // A client may introspect the tokens it was issued (the bench introspects its own).
        allowedPolicy: (ctx, client, token) => token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: true,
        // The token request names the resource when it wants a JWT; without one the token is opaque.
        defaultResource: () => undefined,
        getResourceServerInfo: (ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: SCOPE,
            audience: RESOURCE,
            accessTokenTTL: TOKEN_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  };
}

async function worker() {
  const settings = JSON.parse(process.env.RIVAL_SETTINGS);
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true });
  const provider = new Provider(`http://${HOST}:${PORT}`, configuration(settings, redis));
  const server = provider.listen(PORT, HOST);
  process.on('disconnect', () => {
    server.close();
    server.closeIdleConnections();
    redis.quit();
  });
}

if (cluster.isPrimary) {
  await primary();
} else {
  await worker();
}
