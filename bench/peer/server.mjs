// The peer of the side-by-side benchmark (bench/run.sh): node-oidc-provider in production mode,
// configured like Latchkey's bench tenant.
//
// - the same clients (ids and secrets from PEER_CONFIG): a client_credentials client with ES256
//   JWT access tokens (RFC 8707 resource indicator, accessTokenFormat 'jwt'), one with opaque
//   tokens, and a confidential web client (code + PKCE S256, refresh rotation, ES256 ID tokens);
// - introspection, revocation, client_credentials and refresh_token grants;
// - an in-memory adapter: the package's own MemoryAdapter over an unbounded Map (the default one
//   is an LRU capped at 1000 entries, which would evict live refresh tokens under load);
// - a sign-in page like Latchkey's: a CSRF token in a hidden field, the interaction cookie, and
//   the password checked against an argon2id hash with Latchkey's parameters (m=19456 KiB, t=2,
//   p=1), so the code flow costs one argon2id verification on both sides.
//
// Usage: NODE_ENV=production PEER_PORT=18083 PEER_CONFIG=peer.json node server.mjs
// PEER_CONFIG: {"clients":{"jwt":{"id","secret"},"opaque":{...},"web":{...,"redirect_uri"}},
//               "user":{"username","password","email"}}
import http from 'node:http';
import { generateKeyPairSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import argon2 from 'argon2';

const port = Number(process.env.PEER_PORT || 18083);
const host = process.env.PEER_HOST || '127.0.0.1';
const issuer = process.env.PEER_ISSUER || `http://${host}:${port}`;
const cfg = JSON.parse(readFileSync(process.env.PEER_CONFIG, 'utf8'));
const RESOURCE = 'https://api.bench.test';
const ACCESS_TTL = 3600;

// An unbounded store with the interface MemoryAdapter expects of its LRU (get/set/delete, maxAge).
class Store {
  #m = new Map();
  constructor() {
    setInterval(() => {
      const now = Date.now();
      for (const [k, e] of this.#m) if (e.expiry <= now) this.#m.delete(k);
    }, 30_000).unref();
  }
  get(key) {
    const e = this.#m.get(key);
    if (!e) return undefined;
    if (e.expiry <= Date.now()) { this.#m.delete(key); return undefined; }
    return e.value;
  }
  set(key, value, { maxAge } = {}) {
    const expiry = typeof maxAge === 'number' && Number.isFinite(maxAge) ? Date.now() + maxAge : Infinity;
    this.#m.set(key, { value, expiry });
  }
  delete(key) { this.#m.delete(key); }
}
const store = new Store();

const jwk = (alg, kp) => ({ ...kp.privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: randomUUID() });
const keys = [
  jwk('ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })),
  jwk('RS256', generateKeyPairSync('rsa', { modulusLength: 2048 })),
];

const { clients: c, user } = cfg;
const hash = await argon2.hash(user.password, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
const account = {
  accountId: `user-${user.username}`,
  async claims() {
    return { sub: this.accountId, email: user.email, email_verified: true, name: user.username, preferred_username: user.username };
  },
};

const ccClient = (x) => ({
  client_id: x.id, client_secret: x.secret, grant_types: ['client_credentials'], response_types: [],
  redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'reports.read',
});
const opaqueIds = new Set([c.opaque.id]);

const provider = new Provider(issuer, {
  adapter: (model) => new MemoryAdapter(model, store),
  clients: [
    ccClient(c.jwt),
    ccClient(c.opaque),
    {
      client_id: c.web.id, client_secret: c.web.secret,
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      redirect_uris: [c.web.redirect_uri], token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  findAccount: async (_ctx, sub) => (sub === account.accountId ? account : undefined),
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'reports.read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Client credentials always get the API as audience; the web client's tokens stay opaque
      // userinfo tokens (node-oidc-provider's userinfo does not take resource-bound tokens).
      defaultResource: (_ctx, client) => (client.grantTypeAllowed('client_credentials') ? RESOURCE : undefined),
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, _resource, client) => ({
        scope: 'reports.read',
        audience: RESOURCE,
        accessTokenTTL: ACCESS_TTL,
        accessTokenFormat: opaqueIds.has(client.clientId) ? 'opaque' : 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  // node-oidc-provider drops offline_access from an authorization request without
  // prompt=consent; Latchkey keeps it. Issue refresh tokens to the web client either way, so the
  // same request works on both.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: ACCESS_TTL, ClientCredentials: ACCESS_TTL, AuthorizationCode: 60, IdToken: 600,
    RefreshToken: 30 * 24 * 3600, Interaction: 600, Session: 24 * 3600, Grant: 30 * 24 * 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  routes: {
    authorization: '/authorize', token: '/token', userinfo: '/userinfo', introspection: '/introspect',
    revocation: '/revoke', end_session: '/end-session', jwks: '/jwks',
  },
  renderError: async (ctx, out) => { ctx.type = 'json'; ctx.body = out; },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
if (process.env.PEER_DEBUG) {
  provider.on('grant.error', (ctx, err) => console.error('grant.error', err.error_detail, ctx.oidc.params?.refresh_token));
  for (const ev of ['refresh_token.destroyed', 'grant.revoked', 'refresh_token.saved', 'refresh_token.consumed']) provider.on(ev, (x) => console.error(ev, typeof x === 'string' ? x : x.jti));
}

const callback = provider.callback();
const csrfTokens = new Map(); // interaction uid -> CSRF token of its sign-in form
const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function readForm(req) {
  return new Promise((ok, fail) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; if (body.length > 65536) req.destroy(); });
    req.on('end', () => ok(new URLSearchParams(body)));
    req.on('error', fail);
  });
}

function page(res, status, uid, error) {
  const csrf = randomBytes(32).toString('hex');
  csrfTokens.set(uid, csrf);
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><title>Sign in</title>
<form method="post" action="/interaction/${esc(uid)}/login">
<input type="hidden" name="csrf" value="${csrf}">
${error ? `<p role="alert">${esc(error)}</p>` : ''}
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button>Sign in</button></form></html>`);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (req.method === 'GET' && !action) return page(res, 200, uid);
  if (req.method !== 'POST' || action !== 'login') { res.writeHead(404).end(); return; }
  const form = await readForm(req);
  const want = csrfTokens.get(uid);
  const got = form.get('csrf') || '';
  if (!want || want.length !== got.length || !timingSafeEqual(Buffer.from(want), Buffer.from(got))) {
    return page(res, 403, uid, 'The form expired. Please try again.');
  }
  csrfTokens.delete(uid);
  const ok = form.get('username') === user.username && await argon2.verify(hash, form.get('password') || '');
  if (!ok) return page(res, 200, uid, 'Wrong username or password.');
  const grant = new provider.Grant({ accountId: account.accountId, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope || 'openid'));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId: account.accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const server = http.createServer((req, res) => {
  const m = /^\/interaction\/([\w-]+)(?:\/(\w+))?$/.exec(req.url.split('?')[0]);
  if (m) {
    interaction(req, res, m[1], m[2]).catch((err) => {
      if (!res.headersSent) res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end(String(err?.message || err));
    });
    return;
  }
  if (req.url === '/healthz') { res.writeHead(200).end('ok'); return; }
  callback(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, host, () => console.error(`peer listening on ${issuer}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
