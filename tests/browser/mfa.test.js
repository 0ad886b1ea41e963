// Second factors in a real browser (Debian's Chromium via playwright-core), found by their labels
// the way a person finds them: turning on an authenticator app from the account page, signing in
// with it, recovery codes, a tenant that requires MFA (enrolment before the client gets a code),
// and step-up by `acr_values`. Boots the `latchkey` binary on a fresh SQLite database and plays
// the client with a tiny HTTP server on a loopback port (as oidc.test.js does).
//
// The server runs on the real clock, so the test computes TOTP codes itself (RFC 6238: HMAC-SHA-1,
// 30-second steps, 6 digits) and, where one user needs a second code, waits for the next step the
// way a person waits for the app to show a new code: each step's code is accepted once per user.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { jwtPayload, latchkeyCli, launchChromium, relyingParty, root, serve, workspace } from './kit.mjs';

const shots = join(root, 'docs', 'img');
const PASSWORD = 'tulip-gravel-orbit-42';
const ACR_MFA = 'urn:latchkey:acr:mfa';
let server, rp, browser, base, env, portal, vault, RP, REDIRECT_URI;
const rpHits = [];
let serverLog = '';

const cli = (args, input) => latchkeyCli(env, args, input);

// ---- TOTP, as an authenticator app computes it ----------------------------------------------

/** RFC 4648 base32 (any case, padding and spaces ignored). */
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const out = [];
  let buffer = 0, bits = 0;
  for (const c of text.toUpperCase().replace(/[=\s]/g, '')) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    buffer = ((buffer << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) { out.push((buffer >> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

const STEP_SECS = 30;
const stepNow = () => Math.floor(Date.now() / 1000 / STEP_SECS);

/** The code of time step `step` (RFC 4226 HOTP over the step counter, dynamic truncation). */
function totp(key, step, digits = 6) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 0x0f;
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/** A 6-digit code that is valid in no step the server accepts now (±1). */
function wrongCode(key) {
  const valid = new Set([-1, 0, 1, 2].map((d) => totp(key, stepNow() + d)));
  for (let n = 123456; ; n = (n + 111111) % 1000000) {
    const c = String(n).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

/** Waits, like a person watching the app, until a step after `used` has begun; returns it. */
async function nextStep(used) {
  const wait = (used + 1) * STEP_SECS * 1000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait + 250));
  const step = stepNow();
  assert.ok(step > used, `step ${step} after ${used}`);
  return step;
}

// ---- the server, the client and the browser ------------------------------------------------

before(async () => {
  // RFC 6238 Appendix B, SHA-1 (the 8-digit vectors, 6 digits being their last six).
  const rfcKey = Buffer.from('12345678901234567890');
  assert.equal(totp(rfcKey, Math.floor(59 / 30), 8), '94287082');
  assert.equal(totp(rfcKey, Math.floor(1111111109 / 30), 8), '07081804');
  assert.equal(totp(rfcKey, Math.floor(2000000000 / 30)), '279037');
  assert.deepEqual(base32Decode('MZXW6YTBOI'), Buffer.from('foobar'));

  ({ base, env } = await workspace());
  rp = await relyingParty(rpHits);
  RP = rp.url;
  REDIRECT_URI = `${RP}/cb`;
  // acme: MFA optional (the default); one user per test, so codes and throttles don't mix.
  cli(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  cli(['tenant', 'update', 'acme', '--primary-color', '#0b57d0']);
  for (const [username, name] of [['alice', 'Alice Example'], ['bob', 'Bob Example'], ['carol', 'Carol Example']]) {
    cli(['user', 'create', '--tenant', 'acme', '--username', username, '--display-name', name,
      '--email', `${username}@acme.test`, '--password-stdin'], PASSWORD + '\n');
  }
  portal = JSON.parse(cli(['client', 'create', '--tenant', 'acme', '--name', 'Portal',
    '--redirect-uri', REDIRECT_URI, '--grant', 'authorization_code', '--first-party', '--json']));
  // strict: MFA required for everyone, with its own user and client.
  cli(['tenant', 'create', 'strict', '--display-name', 'Strict Ltd']);
  cli(['tenant', 'update', 'strict', '--mfa', 'required']);
  cli(['user', 'create', '--tenant', 'strict', '--username', 'dana', '--display-name', 'Dana Example',
    '--email', 'dana@strict.test', '--password-stdin'], PASSWORD + '\n');
  vault = JSON.parse(cli(['client', 'create', '--tenant', 'strict', '--name', 'Vault',
    '--redirect-uri', REDIRECT_URI, '--grant', 'authorization_code', '--first-party', '--json']));
  assert.ok(portal.client_secret && vault.client_secret, 'both clients are confidential');

  server = await serve(env, (text) => { serverLog += text; });
  browser = await launchChromium();
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  rp?.close();
});

const b64url = (buf) => buf.toString('base64url');

/** A fresh authorization request to `tenant`: its URL and the secrets the client keeps. */
function authorizeRequest(tenant, clientId, extra = {}) {
  const verifier = b64url(randomBytes(48));
  const state = b64url(randomBytes(16));
  const nonce = b64url(randomBytes(16));
  const url = new URL(`${base}/t/${tenant}/authorize`);
  const params = {
    client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code',
    scope: 'openid profile', state, nonce,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256', ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { url: url.toString(), verifier, state, nonce };
}

/** A fresh browser (no session) and the requests the relying party receives from now on. */
async function freshBrowser(options = {}) {
  const ctx = await browser.newContext(options);
  ctx.setDefaultTimeout(10000);
  const page = await ctx.newPage();
  const since = rpHits.length;
  return { ctx, page, hits: () => rpHits.slice(since).filter((h) => !h.url.endsWith('/favicon.ico')) };
}

/** The authorization response the browser brought to the redirect URI (query mode). */
async function callback(page) {
  await page.waitForURL((u) => u.toString().startsWith(`${REDIRECT_URI}?`));
  return new URL(page.url()).searchParams;
}

/** Redeems `code` for `client` (client_secret_basic) at `tenant`'s token endpoint. */
async function redeem(tenant, client, code, verifier) {
  const enc = (s) => encodeURIComponent(s);
  const res = await fetch(`${base}/t/${tenant}/token`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: `Basic ${Buffer.from(`${enc(client.client_id)}:${enc(client.client_secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

async function fillSignIn(page, user, password = PASSWORD) {
  await page.getByLabel('Username or email').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

async function signIn(page, user, tenant = 'acme') {
  await page.goto(`${base}/t/${tenant}/login`);
  await fillSignIn(page, user);
}

async function signOut(page) {
  await page.goto(`${base}/t/acme/account`);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(/\/t\/acme\/login\?signed_out=1/);
}

/** From the account page: the "Authenticator app" section's set-up link. */
async function openSetUp(page) {
  await page.waitForURL(`${base}/t/acme/account`);
  await page.getByRole('heading', { name: 'Authenticator app' }).waitFor();
  assert.match(await page.textContent('main'), /No authenticator app is set up\./);
  await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
  await page.waitForURL(/\/t\/acme\/account\/authenticator$/);
}

/** On the enrolment page: the key shown under the QR code, decoded as an app would. */
async function shownKey(page) {
  const qr = page.getByRole('img', { name: 'QR code for your authenticator app' });
  assert.ok(await qr.isVisible(), 'the QR code shows');
  assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0), 'the QR image loads under the CSP');
  const secret = (await page.locator('code.secret').textContent()).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/, 'a 160-bit key in base32');
  const key = base32Decode(secret);
  assert.equal(key.length, 20);
  return { secret, key };
}

/** Types the app's current code and turns the app on; returns the step used and the codes. */
async function turnOn(page, key) {
  const step = stepNow();
  await page.getByLabel('Authentication code').fill(totp(key, step));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.getByRole('heading', { name: 'Recovery codes', level: 1 }).waitFor();
  const codes = (await page.locator('li code').allTextContents()).map((c) => c.trim());
  assert.equal(codes.length, 10, `ten recovery codes: ${codes}`);
  for (const c of codes) assert.match(c, /^[a-z0-9]{4}(-[a-z0-9]{4}){3}$/);
  assert.equal(new Set(codes).size, 10, 'all different');
  return { step, codes };
}

/** Sets up an authenticator app from the account page, back on the account page afterwards. */
async function enrolFromAccount(page) {
  await openSetUp(page);
  const { key } = await shownKey(page);
  const { step, codes } = await turnOn(page, key);
  await page.getByRole('link', { name: 'Continue' }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  assert.match(await page.textContent('main'), /Your authenticator app is set up\./);
  return { key, step, codes };
}

// ---- the tests -------------------------------------------------------------------------------

test('a person turns on an authenticator app and signs in with it', async () => {
  const { ctx, page } = await freshBrowser({ viewport: { width: 900, height: 760 } });
  await signIn(page, 'alice');
  await openSetUp(page);
  const { secret, key } = await shownKey(page);
  const code = page.getByLabel('Authentication code');
  assert.equal(await code.getAttribute('autocomplete'), 'one-time-code');
  assert.equal(await code.getAttribute('inputmode'), 'numeric');
  await page.screenshot({ path: join(shots, 'authenticator.png'), fullPage: true });
  await page.reload();
  assert.equal((await page.locator('code.secret').textContent()).trim(), secret, 'reloading shows the same key');

  // A mistyped code is announced, and the field points at the message.
  await code.fill(wrongCode(key));
  await page.getByRole('button', { name: 'Turn on' }).click();
  assert.match(await page.getByRole('alert').textContent(), /That code is not valid/);
  assert.equal(await page.getByLabel('Authentication code').getAttribute('aria-describedby'), 'error');
  assert.equal((await page.locator('code.secret').textContent()).trim(), secret, 'the same key after a mistake');

  const { step: used, codes } = await turnOn(page, key);
  assert.match(await page.getByRole('status').textContent(), /shown only now/);
  await page.screenshot({ path: join(shots, 'recovery-codes.png'), fullPage: true });
  await page.getByRole('link', { name: 'Continue' }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  const account = await page.textContent('main');
  assert.match(account, /Your authenticator app is set up\./);
  assert.match(account, /Recovery codes left: 10/);
  assert.equal(codes.length, 10);
  await signOut(page);

  // Now the password leads to the second step.
  await signIn(page, 'alice');
  await page.waitForURL(/\/t\/acme\/login\/second-factor\?return_to=/);
  const secondFactor = page.url();
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Two-step verification');
  assert.equal(await page.getByLabel('Authentication code').getAttribute('autocomplete'), 'one-time-code');
  assert.ok(await page.getByLabel('Recovery code').isVisible());
  assert.ok(await page.getByRole('button', { name: 'Use recovery code' }).isVisible());
  await page.screenshot({ path: join(shots, 'second-factor.png'), fullPage: true });

  // Half signed in reaches nothing.
  await page.goto(`${base}/t/acme/account`);
  assert.equal(new URL(page.url()).pathname, '/t/acme/login', `not on the account page: ${page.url()}`);
  await page.goto(secondFactor);

  await page.getByLabel('Authentication code').fill(wrongCode(key));
  await page.getByRole('button', { name: 'Verify' }).click();
  assert.match(await page.getByRole('alert').textContent(), /That code is not valid/);
  assert.equal(await page.getByLabel('Authentication code').getAttribute('aria-describedby'), 'error');

  // The code that turned the app on was spent: a replay is refused.
  await page.getByLabel('Authentication code').fill(totp(key, used));
  await page.getByRole('button', { name: 'Verify' }).click();
  assert.match(await page.getByRole('alert').textContent(), /already used/);

  const step = await nextStep(used);
  await page.getByLabel('Authentication code').fill(totp(key, step));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  assert.match(await page.textContent('main'), /Signed in as Alice Example/);
  await ctx.close();
});

test('a recovery code works once', async () => {
  const { ctx, page } = await freshBrowser();
  await signIn(page, 'bob');
  const { codes } = await enrolFromAccount(page);
  await signOut(page);

  await signIn(page, 'bob');
  await page.waitForURL(/\/t\/acme\/login\/second-factor/);
  const typed = codes[3].toUpperCase().replaceAll('-', ' '); // as read aloud from a printout
  await page.getByLabel('Recovery code').fill(typed);
  await page.getByRole('button', { name: 'Use recovery code' }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  const account = await page.textContent('main');
  assert.match(account, /Signed in as Bob Example/);
  assert.match(account, /Recovery codes left: 9/);
  // Bob hears about it (a development issuer writes the mail to its log).
  let mailed = false;
  for (let i = 0; i < 100 && !mailed; i++) {
    mailed = serverLog.split('\n').some((l) => l.includes('bob@acme.test') && l.includes('A recovery code was used'));
    if (!mailed) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(mailed, 'the use is mailed to bob');
  await signOut(page);

  await signIn(page, 'bob');
  await page.waitForURL(/\/t\/acme\/login\/second-factor/);
  await page.getByLabel('Recovery code').fill(codes[3]);
  await page.getByRole('button', { name: 'Use recovery code' }).click();
  assert.equal(await page.getByRole('alert').textContent(), 'That recovery code is not valid or was already used.');
  assert.match(page.url(), /\/t\/acme\/login\/second-factor/);
  await page.goto(`${base}/t/acme/account`);
  assert.equal(new URL(page.url()).pathname, '/t/acme/login', `still not signed in: ${page.url()}`);
  await ctx.close();
});

test('required MFA sends a new user to enrolment before the client gets a code', async () => {
  const { ctx, page, hits } = await freshBrowser();
  const req = authorizeRequest('strict', vault.client_id);
  await page.goto(req.url);
  assert.match(page.url(), /\/t\/strict\/login\?interaction=/);
  await fillSignIn(page, 'dana');
  await page.waitForURL(/\/t\/strict\/account\/authenticator\?return_to=/);
  const enrolAt = page.url();
  assert.match(await page.getByRole('status').textContent(), /requires two-step verification/);
  assert.deepEqual(hits(), [], 'nothing reached the client');

  // The flow's continuation gives no code while the enrolment is due.
  const resume = new URL(enrolAt).searchParams.get('return_to');
  assert.match(resume, /^\/t\/strict\/authorize\/resume\?interaction=/);
  await page.goto(`${base}${resume}`);
  assert.match(page.url(), /\/t\/strict\/login/, `sent back to sign in: ${page.url()}`);
  assert.deepEqual(hits(), [], 'still nothing at the client');

  await page.goto(enrolAt);
  const { key } = await shownKey(page);
  await page.getByLabel('Authentication code').fill(totp(key, stepNow()));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.getByRole('heading', { name: 'Recovery codes', level: 1 }).waitFor();
  assert.equal(await page.locator('li code').count(), 10);
  assert.deepEqual(hits(), [], 'the codes are shown first');

  await page.getByRole('link', { name: 'Continue' }).click();
  const cb = await callback(page);
  assert.equal(cb.get('state'), req.state);
  assert.equal(cb.get('iss'), `${base}/t/strict`);
  assert.ok(cb.get('code'), `a code: ${page.url()}`);
  assert.equal(hits().length, 1);
  const tokens = await redeem('strict', vault, cb.get('code'), req.verifier);
  const id = jwtPayload(tokens.id_token);
  assert.equal(id.nonce, req.nonce);
  assert.equal(id.preferred_username, 'dana');
  assert.ok(id.amr.includes('otp') && id.amr.includes('mfa'), JSON.stringify(id.amr));
  assert.equal(id.acr, ACR_MFA);
  await ctx.close();
});

test('acr_values are met by a factor from before the sign-in, never one added during it', async () => {
  const { ctx, page } = await freshBrowser();
  await signIn(page, 'carol');
  // Enrolled from the account page: this session still only used the password.
  const { key, step: used } = await enrolFromAccount(page);

  const plain = authorizeRequest('acme', portal.client_id);
  await page.goto(plain.url);
  const cb0 = await callback(page);
  assert.equal(cb0.get('state'), plain.state);
  const pwd = jwtPayload((await redeem('acme', portal, cb0.get('code'), plain.verifier)).id_token);
  assert.equal(pwd.acr, 'urn:latchkey:acr:pwd');
  assert.deepEqual(pwd.amr, ['pwd']);

  // Without a page to show, the client hears that the person must act.
  const silent = authorizeRequest('acme', portal.client_id, { acr_values: ACR_MFA, prompt: 'none' });
  await page.goto(silent.url);
  const cb1 = await callback(page);
  assert.equal(cb1.get('state'), silent.state);
  assert.equal(cb1.get('error'), 'interaction_required');

  // A factor added during this sign-in does not step it up (whoever holds the password could
  // add their own): acr_values are voluntary, and the code says what the session really has.
  const same = authorizeRequest('acme', portal.client_id, { acr_values: ACR_MFA });
  await page.goto(same.url);
  const cb2 = await callback(page);
  assert.equal(cb2.get('state'), same.state);
  const still = jwtPayload((await redeem('acme', portal, cb2.get('code'), same.verifier)).id_token);
  assert.equal(still.acr, 'urn:latchkey:acr:pwd');
  await ctx.close();

  // A later sign-in owes the factor the user now has, and then meets the request.
  const later = await freshBrowser();
  await signIn(later.page, 'carol');
  await later.page.waitForURL(/\/t\/acme\/login\/second-factor\?return_to=/);
  assert.equal(await later.page.getByRole('heading', { level: 1 }).textContent(), 'Two-step verification');
  const step = await nextStep(used);
  await later.page.getByLabel('Authentication code').fill(totp(key, step));
  await later.page.getByRole('button', { name: 'Verify' }).click();
  await later.page.waitForURL(`${base}/t/acme/account`);
  const req = authorizeRequest('acme', portal.client_id, { acr_values: ACR_MFA });
  await later.page.goto(req.url);
  const cb = await callback(later.page);
  assert.equal(cb.get('state'), req.state);
  assert.ok(cb.get('code'), `a code: ${later.page.url()}`);
  const tokens = await redeem('acme', portal, cb.get('code'), req.verifier);
  const id = jwtPayload(tokens.id_token);
  assert.equal(id.nonce, req.nonce);
  assert.equal(id.acr, ACR_MFA);
  assert.deepEqual(id.amr, ['pwd', 'otp', 'mfa']);
  assert.equal(jwtPayload(tokens.access_token).acr, ACR_MFA, 'the access token says it too');
  await later.ctx.close();
});
