// Loads a PostgreSQL Latchkey database to scale for bench/run.sh --scale: N tenants ("scale-1"
// .. "scale-N") copied from the provisioned tenant `bench`, each with that tenant's clients
// (same secrets), policy and signing keys, and USERS users spread over them (and `bench`), all
// with the `bench` user's real argon2id hash. Everything but the sealed values is SQL
// (generate_series, INSERT … SELECT); tenants, data keys and signing keys go through COPY.
//
// Each loaded tenant's audit chain starts empty (its head at the genesis hash, as a new tenant's
// does), so audited changes work there too.
//
// Sealed values are bound to their tenant (AES-256-GCM associated data names tenant, table,
// column and row; crates/latchkey-keys/src/envelope.rs), so a copied row would not open: the
// bench tenant's data key is unwrapped with the master key, wrapped again for each new tenant,
// and its signing keys' private halves sealed again under each new tenant's name. Every tenant
// can then issue tokens (it shares `bench`'s key pairs: fine for a benchmark, never in production).
//
// Usage: node bench/scale/load.mjs --db postgres://…/latchkey_bench_scale --master-key FILE
//          [--tenants 10000] [--users 1000000] [--spread FILE]
// Prints one JSON line: tenants, users, db_size, sample (a loaded tenant and its client ids).
// --spread FILE: writes "slug client_id" of every loaded tenant's JWT client, one a line.
import { spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : d; };
const db = opt('db');
const tenants = Number(opt('tenants', 10000));
const users = Number(opt('users', 1000000));
const spread = opt('spread', '');
const masterB64 = readFileSync(opt('master-key'), 'utf8').trim();

function psql(sql, input) {
  const r = spawnSync('psql', ['-qAt', '-v', 'ON_ERROR_STOP=1', db, ...(input === undefined ? ['-c', sql] : ['-f', '-'])], {
    input, encoding: 'utf8', maxBuffer: 1 << 30,
  });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout;
}
const rows = (sql) => psql(`SELECT coalesce(json_agg(x), '[]') FROM (${sql}) x`).trim();
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

// The envelope format of crates/latchkey-keys/src/envelope.rs.
const keyBytes = (b64) => Buffer.from(b64.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
const keyId = (bytes) => createHash('sha256').update(bytes).digest().subarray(0, 8).toString('hex');
function aad(tenant, table, column, row) {
  const out = [Buffer.from('latchkey-aad-v1')];
  for (const part of [tenant, table, column, row]) {
    const b = Buffer.from(part);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    out.push(len, b);
  }
  return Buffer.concat(out);
}
function seal(key, where, plaintext) {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(where);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return `v1.${keyId(key)}.${Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64url')}`;
}
function open(key, where, sealed) {
  const [v, id, body] = sealed.split('.');
  if (v !== 'v1' || id !== keyId(key)) throw new Error(`sealed under ${id}, not ${keyId(key)}`);
  const raw = Buffer.from(body, 'base64url');
  const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  d.setAAD(where);
  d.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]);
}

const master = keyBytes(masterB64);
if (master.length !== 32) throw new Error('the master key is not 32 bytes');
const [bench] = JSON.parse(rows(`SELECT * FROM tenants WHERE slug = 'bench'`));
if (!bench) throw new Error('no tenant bench: provision it first');
const deks = JSON.parse(rows(`SELECT * FROM data_keys WHERE tenant_id = ${q(bench.id)}`));
const keys = JSON.parse(rows(`SELECT * FROM signing_keys WHERE tenant_id = ${q(bench.id)}`));
const [user] = JSON.parse(rows(`SELECT password_hash FROM users WHERE tenant_id = ${q(bench.id)} AND username = 'bench'`));
const plainDeks = deks.map((d) => ({ ...d, bytes: open(master, aad(bench.id, 'data_keys', 'wrapped', d.id), d.wrapped) }));
const dekById = new Map(plainDeks.map((d) => [d.id, d.bytes]));
const privates = keys.map((k) => {
  const dekId = k.private_key.split('.')[1];
  return { ...k, pkcs8: open(dekById.get(dekId), aad(bench.id, 'signing_keys', 'private_key', k.kid), k.private_key) };
});

// COPY text format.
const cell = (v) => (v === null || v === undefined ? '\\N'
  : String(v).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r'));
const line = (vals) => `${vals.map(cell).join('\t')}\n`;
const now = Date.now();
const t = [];
const d = [];
const s = [];
const ids = [];
for (let i = 1; i <= tenants; i++) {
  const id = randomUUID();
  ids.push(id);
  t.push(line([id, `scale-${i}`, `Scale ${i}`, bench.policy, now, now]));
  for (const k of plainDeks) {
    d.push(line([id, k.id, keyId(master), seal(master, aad(id, 'data_keys', 'wrapped', k.id), k.bytes), now]));
  }
  for (const k of privates) {
    const dek = dekById.get(k.private_key.split('.')[1]);
    s.push(line([id, k.kid, k.alg, k.key_use, k.state, k.public_jwk,
      seal(dek, aad(id, 'signing_keys', 'private_key', k.kid), k.pkcs8),
      k.created_at, k.activated_at, k.retired_at, k.removed_at]));
  }
}
const perTenant = Math.max(1, Math.ceil(users / (tenants + 1)));
const script = `
BEGIN;
COPY tenants (id, slug, display_name, policy, created_at, updated_at) FROM STDIN;
${t.join('')}\\.
COPY data_keys (tenant_id, id, kek_id, wrapped, created_at) FROM STDIN;
${d.join('')}\\.
COPY signing_keys (tenant_id, kid, alg, key_use, state, public_jwk, private_key, created_at, activated_at, retired_at, removed_at) FROM STDIN;
${s.join('')}\\.
INSERT INTO audit_heads (tenant_id, seq, hash)
  SELECT id, 0, '${'0'.repeat(64)}' FROM tenants WHERE slug LIKE 'scale-%';
INSERT INTO clients (id, tenant_id, name, secret_hash, client_type, auth_method, redirect_uris,
    post_logout_redirect_uris, grant_types, scopes, access_token_format, require_pkce,
    introspect_others, first_party, jwks_uri, jwks, created_at, updated_at, settings)
  SELECT gen_random_uuid()::text, t.id, c.name, c.secret_hash, c.client_type, c.auth_method, c.redirect_uris,
    c.post_logout_redirect_uris, c.grant_types, c.scopes, c.access_token_format, c.require_pkce,
    c.introspect_others, c.first_party, c.jwks_uri, c.jwks, c.created_at, c.updated_at, c.settings
  FROM tenants t CROSS JOIN clients c
  WHERE t.slug LIKE 'scale-%' AND c.tenant_id = ${q(bench.id)};
INSERT INTO users (id, tenant_id, username, email, display_name, status, password_hash,
    password_changed_at, created_at, updated_at)
  SELECT gen_random_uuid()::text, t.id, 'user' || n, 'user' || n || '@' || t.slug || '.test', 'User ' || n,
    'active', ${q(user.password_hash)}, ${now}, ${now}, ${now}
  FROM tenants t CROSS JOIN generate_series(1, ${perTenant}) n
  WHERE t.slug LIKE 'scale-%' OR t.slug = 'bench';
COMMIT;
ANALYZE;
`;
psql(null, script);
const counts = JSON.parse(rows(`SELECT (SELECT count(*) FROM tenants) AS tenants, (SELECT count(*) FROM users) AS users,
  (SELECT count(*) FROM clients) AS clients, (SELECT count(*) FROM signing_keys) AS signing_keys,
  pg_size_pretty(pg_database_size(current_database())) AS db_size`))[0];
const sample = JSON.parse(rows(`SELECT t.slug, c.name, c.id FROM tenants t JOIN clients c ON c.tenant_id = t.id
  WHERE t.slug = 'scale-${Math.ceil(tenants / 2)}' ORDER BY c.name`));
if (spread) {
  const jwtName = JSON.parse(rows(`SELECT name FROM clients WHERE tenant_id = ${q(bench.id)} AND access_token_format = 'jwt' AND grant_types LIKE '%client_credentials%'`))[0].name;
  const list = psql(`SELECT t.slug || ' ' || c.id FROM tenants t JOIN clients c ON c.tenant_id = t.id WHERE t.slug LIKE 'scale-%' AND c.name = ${q(jwtName)}`);
  writeFileSync(spread, list);
}
console.log(JSON.stringify({ ...counts, per_tenant: perTenant, sample }));
