// The browser-less code flow of the side-by-side benchmark (bench/run.sh), the same for every
// target: a cookie jar that never follows redirects by itself, PKCE S256, the sign-in form
// filled in from its hidden fields (CSRF token) with the pre-session / interaction cookie, the
// redirect back to the client read for `code` and `state`, then the code redeemed at the token
// endpoint with client_secret_basic.
//
//   node codeflow.mjs flow   BASE  --seconds S --concurrency C   full flows, a new browser each
//   node codeflow.mjs signin BASE  --seconds S --concurrency C   GET sign-in page + POST (Latchkey)
//   node codeflow.mjs pool   BASE  --count N --concurrency C --out FILE
//        sign in once, then N authorizations in that session (no password), each code redeemed;
//        writes the refresh tokens one a line, and prints the first access token.
//
// BASE is the issuer (Latchkey: http://HOST:PORT/t/SLUG). Settings from the environment:
// FLOW_CLIENT_ID, FLOW_CLIENT_SECRET, FLOW_REDIRECT_URI, FLOW_USERNAME, FLOW_PASSWORD,
// FLOW_XFF=1 (send a different X-Forwarded-For per browser, as clients behind a trusted proxy),
// FLOW_SCOPE (the scope asked for at /authorize; default "openid email offline_access").
// Prints one JSON line: ok, failed, per_second, requests, p50_ms, p99_ms, errors (first few).
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const [mode, base, ...rest] = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : dflt;
};
const seconds = Number(opt('seconds', 5));
const concurrency = Number(opt('concurrency', 16));
const count = Number(opt('count', 100));
const out = opt('out', '');
const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const client = { id: env('FLOW_CLIENT_ID'), secret: process.env.FLOW_CLIENT_SECRET || '', redirect: env('FLOW_REDIRECT_URI') };
const user = { name: env('FLOW_USERNAME'), password: env('FLOW_PASSWORD') };
const xff = process.env.FLOW_XFF === '1';
const scope = process.env.FLOW_SCOPE || 'openid email offline_access';
const b64u = (b) => Buffer.from(b).toString('base64url');
const basic = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
const origin = new URL(base).origin;

let requests = 0;
let browsers = 0;

class Browser {
  constructor() {
    this.jar = new Map();
    const n = browsers++;
    this.ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  }
  headers(extra = {}) {
    const h = { ...extra };
    if (this.jar.size) h.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (xff) h['x-forwarded-for'] = this.ip;
    return h;
  }
  absorb(res) {
    for (const sc of res.headers.getSetCookie()) {
      const pair = sc.split(';')[0];
      const eq = pair.indexOf('=');
      const [k, v] = [pair.slice(0, eq).trim(), pair.slice(eq + 1)];
      if (!v || /max-age=0/i.test(sc) || /expires=thu, 01 jan 1970/i.test(sc)) this.jar.delete(k);
      else this.jar.set(k, v);
    }
  }
  async fetch(url, init = {}) {
    requests++;
    const res = await fetch(url, { ...init, redirect: 'manual', headers: this.headers(init.headers) });
    this.absorb(res);
    return res;
  }
}

const hidden = (html) => {
  const fields = {};
  for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]*)"/.exec(m[0]);
    const value = /value="([^"]*)"/.exec(m[0]);
    if (name) fields[name[1]] = (value?.[1] ?? '').replace(/&#(\d+);/g, (_, d) => String.fromCharCode(d)).replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  }
  return fields;
};
const formAction = (html) => /<form[^>]*method="post"[^>]*action="([^"]*)"/i.exec(html)?.[1].replace(/&amp;/g, '&');

/** Walks authorize → sign-in (→ consent) → redirect; returns the code. */
async function authorize(b) {
  const verifier = b64u(randomBytes(32));
  const state = b64u(randomBytes(12));
  const q = new URLSearchParams({
    client_id: client.id, redirect_uri: client.redirect, response_type: 'code',
    scope, state, nonce: b64u(randomBytes(12)),
    code_challenge: b64u(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
  });
  let url = `${base}/authorize?${q}`;
  let init = {};
  for (let step = 0; step < 12; step++) {
    const res = await b.fetch(url, init);
    init = {};
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const loc = new URL(res.headers.get('location'), url).href;
      if (loc.startsWith(client.redirect)) {
        const p = new URL(loc).searchParams;
        if (p.get('state') !== state || !p.get('code')) throw new Error(`bad redirect: ${loc}`);
        return { code: p.get('code'), verifier };
      }
      if (new URL(loc).origin !== origin) throw new Error(`redirect off the issuer: ${loc}`);
      url = loc;
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`${res.status} at ${url}: ${html.slice(0, 200)}`);
    const action = formAction(html);
    if (!action) throw new Error(`no form at ${url}: ${html.slice(0, 200)}`);
    const fields = hidden(html);
    if (html.includes('name="password"')) Object.assign(fields, { username: user.name, password: user.password });
    else fields.decision = 'allow'; // a consent page
    url = new URL(action, url).href;
    init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
  }
  throw new Error('too many steps');
}

async function redeem(b, { code, verifier }) {
  const res = await b.fetch(`${base}/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: client.redirect, code_verifier: verifier }).toString(),
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`token ${res.status}: ${body.slice(0, 200)}`);
  const t = JSON.parse(body);
  if (!t.access_token || !t.id_token || !t.refresh_token) throw new Error(`token response lacks a token: ${body.slice(0, 200)}`);
  return t;
}

/** Latchkey's sign-in alone: GET the page (CSRF token, pre-session cookie), POST the form. */
async function signIn(b) {
  const res = await b.fetch(`${base}/login`);
  const html = await res.text();
  if (res.status !== 200) throw new Error(`login page ${res.status}`);
  const fields = { ...hidden(html), username: user.name, password: user.password };
  const post = await b.fetch(`${base}/login`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString(),
  });
  await post.arrayBuffer();
  if (post.status !== 303 || !post.headers.getSetCookie().length) throw new Error(`sign-in answered ${post.status}`);
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0);

async function timed(work) {
  const lat = [];
  const errors = [];
  let ok = 0;
  let failed = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await work();
        ok++;
        lat.push(performance.now() - t0);
      } catch (e) {
        failed++;
        if (errors.length < 5) errors.push(String(e.message || e));
      }
    }
  }));
  const wall = (performance.now() - start) / 1000;
  lat.sort((a, c) => a - c);
  return { ok, failed, per_second: ok / wall, requests, requests_per_second: requests / wall, seconds: wall, p50_ms: pct(lat, 50), p99_ms: pct(lat, 99), errors };
}

let result;
if (mode === 'flow') {
  result = await timed(async () => { const b = new Browser(); await redeem(b, await authorize(b)); });
} else if (mode === 'signin') {
  result = await timed(async () => signIn(new Browser()));
} else if (mode === 'pool') {
  const b = new Browser();
  const first = await redeem(b, await authorize(b)); // signs in
  const tokens = [first.refresh_token];
  let next = 1;
  const errors = [];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next++;
      try {
        tokens.push((await redeem(b, await authorize(b))).refresh_token);
      } catch (e) {
        if (errors.length < 5) errors.push(String(e.message || e));
      }
    }
  }));
  if (out) writeFileSync(out, `${tokens.join('\n')}\n`);
  result = { ok: tokens.length, failed: count - tokens.length, access_token: first.access_token, errors };
} else {
  console.error('usage: node codeflow.mjs flow|signin|pool BASE [--seconds S] [--concurrency C] [--count N --out FILE]');
  process.exit(2);
}
console.log(JSON.stringify(result));
process.exit(result.failed ? 1 : 0);
