// The OpenID Connect authorization code flow with PKCE in a real browser (Debian's Chromium via
// playwright-core): sign-in, consent, the code at the redirect URI, the token exchange, UserInfo,
// RP-initiated logout, deny, form_post, and withdrawing consent on the account page. Boots the
// `latchkey` binary on a fresh SQLite database, and plays the client (the relying party) with a
// tiny HTTP server on a loopback port that records what the browser brings to the redirect URI.
// (A real listener rather than page.route: Playwright never routes the hop of a redirect, and
// query-mode responses arrive by a 303.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { jwtPayload, latchkeyCli, launchChromium, relyingParty, root, serve, workspace } from './kit.mjs';

const shots = join(root, 'docs', 'img');
const PASSWORD = 'tulip-gravel-orbit-42';
let server, rp, browser, base, issuer, env, portal, partner, RP, REDIRECT_URI;
const rpHits = [];
let serverLog = '';

const cli = (args, input) => latchkeyCli(env, args, input);

before(async () => {
  ({ base, env } = await workspace());
  issuer = `${base}/t/acme`;
  rp = await relyingParty(rpHits);
  RP = rp.url;
  REDIRECT_URI = `${RP}/cb`;
  cli(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  cli(['tenant', 'update', 'acme', '--primary-color', '#0b57d0']);
  cli(['user', 'create', '--tenant', 'acme', '--username', 'alice', '--display-name', 'Alice Example', '--email', 'alice@acme.test', '--password-stdin'], PASSWORD + '\n');
  portal = JSON.parse(cli(['client', 'create', '--tenant', 'acme', '--name', 'Portal',
    '--redirect-uri', REDIRECT_URI, '--post-logout-redirect-uri', `${RP}/bye`,
    '--grant', 'authorization_code', '--grant', 'refresh_token', '--first-party', '--json']));
  partner = JSON.parse(cli(['client', 'create', '--tenant', 'acme', '--name', 'Partner App', '--public',
    '--redirect-uri', REDIRECT_URI, '--grant', 'authorization_code', '--grant', 'refresh_token', '--json']));
  assert.ok(portal.client_id && portal.client_secret, 'the portal is confidential');
  assert.ok(partner.client_id && partner.client_secret == null, 'the partner app is public');
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

/** A fresh authorization request: its URL and the secrets the client keeps. */
function authorizeRequest(clientId, extra = {}) {
  const verifier = b64url(randomBytes(48)); // 64 characters, RFC 7636 §4.1 allows 43-128
  const state = b64url(randomBytes(16));
  const nonce = b64url(randomBytes(16));
  const url = new URL(`${issuer}/authorize`);
  const params = {
    client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code',
    scope: 'openid profile email', state, nonce,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256', ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { url: url.toString(), verifier, state, nonce };
}

/** A fresh browser (no session) and the requests the relying party receives from now on. */
async function rpContext(options = {}) {
  const ctx = await browser.newContext(options);
  ctx.setDefaultTimeout(5000);
  const page = await ctx.newPage();
  const since = rpHits.length;
  return { ctx, page, hits: () => rpHits.slice(since).filter((h) => !h.url.endsWith('/favicon.ico')) };
}

async function fillSignIn(page, user = 'alice', password = PASSWORD) {
  await page.getByLabel('Username or email').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** The authorization response the browser brought to the redirect URI (query mode). */
async function callback(page) {
  await page.waitForURL((u) => u.toString().startsWith(`${REDIRECT_URI}?`));
  return new URL(page.url()).searchParams;
}

/** The errors the page's console reports from now on (CSP violations land there). */
function consoleErrors(page) {
  const said = [];
  page.on('console', (m) => { if (m.type() === 'error') said.push(m.text()); });
  return said;
}

async function token(form, basic) {
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (basic) {
    const enc = (s) => encodeURIComponent(s); // RFC 6749 §2.3.1: form-encode, then Basic
    headers.Authorization = `Basic ${Buffer.from(`${enc(basic.client_id)}:${enc(basic.client_secret)}`).toString('base64')}`;
  }
  const res = await fetch(`${issuer}/token`, { method: 'POST', headers, body: new URLSearchParams(form) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

test('a portal user signs in through the authorization endpoint', async () => {
  const { ctx, page } = await rpContext();
  const req = authorizeRequest(portal.client_id);
  await page.goto(req.url);
  assert.match(page.url(), /\/t\/acme\/login\?interaction=/, 'an unknown browser is asked to sign in');
  await fillSignIn(page);
  const cb = await callback(page); // first party: no consent page
  assert.equal(cb.get('state'), req.state);
  assert.equal(cb.get('iss'), issuer);
  assert.ok(cb.get('code'), `a code: ${page.url()}`);

  const t = await token({
    grant_type: 'authorization_code', code: cb.get('code'), redirect_uri: REDIRECT_URI, code_verifier: req.verifier,
  }, portal);
  assert.equal(t.status, 200, JSON.stringify(t.body));
  assert.equal(t.headers.get('cache-control'), 'no-store');
  assert.equal(t.body.token_type, 'Bearer');
  assert.ok(t.body.access_token && t.body.refresh_token && t.body.id_token, JSON.stringify(t.body));
  const id = jwtPayload(t.body.id_token);
  assert.equal(id.nonce, req.nonce);
  assert.equal(id.aud, portal.client_id);
  assert.equal(id.iss, issuer);
  assert.equal(id.preferred_username, 'alice');

  const ui = await fetch(`${issuer}/userinfo`, { headers: { Authorization: `Bearer ${t.body.access_token}` } });
  assert.equal(ui.status, 200);
  const info = await ui.json();
  assert.equal(info.preferred_username, 'alice');
  assert.equal(info.sub, id.sub);
  assert.equal(info.email, 'alice@acme.test');

  // The code works once (RFC 6749 §4.1.2).
  const again = await token({
    grant_type: 'authorization_code', code: cb.get('code'), redirect_uri: REDIRECT_URI, code_verifier: req.verifier,
  }, portal);
  assert.equal(again.status, 400);
  assert.equal(again.body.error, 'invalid_grant');

  // RP-initiated logout with a hint for the signed-in user: no question asked.
  const logout = new URL(`${issuer}/end-session`);
  logout.searchParams.set('id_token_hint', t.body.id_token);
  logout.searchParams.set('post_logout_redirect_uri', `${RP}/bye`);
  logout.searchParams.set('state', 'bye');
  await page.goto(logout.toString());
  await page.waitForURL(`${RP}/bye?state=bye`);
  await page.goto(`${issuer}/account`);
  assert.match(page.url(), /\/t\/acme\/login/, 'the session ended');
  await ctx.close();
});

test('a third-party app asks for consent', async () => {
  const { ctx, page } = await rpContext({ viewport: { width: 900, height: 760 } });
  const req = authorizeRequest(partner.client_id);
  await page.goto(req.url);
  await fillSignIn(page);
  await page.waitForURL(/\/t\/acme\/(login|authorize)/);
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  await page.screenshot({ path: join(shots, 'consent.png') });
  const main = await page.textContent('main');
  assert.match(main, /Partner App would like to:/);
  const scopes = await page.locator('ul.scopes li').allTextContents();
  assert.deepEqual(scopes, ['Know who you are', 'See your name and username', 'See your email address']);
  await page.getByRole('button', { name: 'Allow' }).click();
  const cb = await callback(page);
  assert.equal(cb.get('state'), req.state);
  assert.equal(cb.get('iss'), issuer);
  assert.ok(cb.get('code'), `a code: ${page.url()}`);

  // A public client names itself in the body and proves the code with its verifier.
  const t = await token({
    grant_type: 'authorization_code', code: cb.get('code'), redirect_uri: REDIRECT_URI,
    code_verifier: req.verifier, client_id: partner.client_id,
  });
  assert.equal(t.status, 200, JSON.stringify(t.body));
  assert.equal(jwtPayload(t.body.id_token).aud, partner.client_id);
  assert.equal(jwtPayload(t.body.id_token).nonce, req.nonce);

  // The answer is remembered: a second request goes straight back with a code.
  const second = authorizeRequest(partner.client_id);
  await page.goto(second.url);
  const cb2 = await callback(page);
  assert.equal(cb2.get('state'), second.state);
  assert.ok(cb2.get('code'));

  await page.goto(`${issuer}/account`);
  const apps = page.locator('h2', { hasText: 'Connected applications' }).locator('xpath=following-sibling::ul[1]');
  assert.match(await apps.textContent(), /Partner App/);
  assert.doesNotMatch(await apps.textContent(), /Portal/, 'a first-party client needs no consent');
  await page.screenshot({ path: join(shots, 'account-apps.png'), fullPage: true });
  await page.getByRole('button', { name: 'Remove access: Partner App' }).click();
  await page.getByText('No application has access yet.').waitFor(); // back on the account page
  assert.equal(await page.getByRole('button', { name: /Remove access/ }).count(), 0);
  assert.doesNotMatch(await page.textContent('main'), /Partner App/);

  // Withdrawing consent revokes the app's refresh tokens...
  const refreshed = await token({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: partner.client_id });
  assert.equal(refreshed.status, 400, JSON.stringify(refreshed.body));
  assert.equal(refreshed.body.error, 'invalid_grant');
  // ...and the next request asks again.
  await page.goto(authorizeRequest(partner.client_id).url);
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  await ctx.close();
});

test('deny returns access_denied', async () => {
  const { ctx, page } = await rpContext();
  const req = authorizeRequest(partner.client_id);
  await page.goto(req.url);
  await fillSignIn(page);
  await page.getByRole('button', { name: 'Deny' }).click();
  const cb = await callback(page);
  assert.equal(cb.get('error'), 'access_denied');
  assert.equal(cb.get('state'), req.state);
  assert.equal(cb.get('iss'), issuer);
  assert.equal(cb.get('code'), null);
  await ctx.close();
});

test('form_post response mode', async () => {
  const { ctx, page, hits } = await rpContext();
  const req = authorizeRequest(portal.client_id, { response_mode: 'form_post' });
  await page.goto(req.url);
  await fillSignIn(page);
  await page.waitForURL(REDIRECT_URI); // posted there by /assets/form_post.js
  const post = hits().find((h) => h.url === REDIRECT_URI && h.method === 'POST');
  assert.ok(post, JSON.stringify(hits()));
  assert.match(post.body, /(^|&)code=/);
  assert.match(post.body, /(^|&)state=/);
  assert.match(post.body, /(^|&)iss=/);
  const form = new URLSearchParams(post.body);
  assert.equal(form.get('state'), req.state);
  assert.equal(form.get('iss'), issuer);
  assert.deepEqual(hits().filter((h) => h.method !== 'POST'), [], 'nothing in a query string');
  const t = await token({
    grant_type: 'authorization_code', code: form.get('code'), redirect_uri: REDIRECT_URI, code_verifier: req.verifier,
  }, portal);
  assert.equal(t.status, 200, JSON.stringify(t.body));
  assert.equal(jwtPayload(t.body.id_token).nonce, req.nonce);
  await ctx.close();
});

// Chromium checks `form-action` on every hop of a form submission's redirect chain, so the pages
// whose forms end at the client (sign-in and consent during a flow) must allow its origin:
//   POST /t/acme/login → 303 /t/acme/authorize/resume → 303 {redirect_uri}?code=…
//   POST /t/acme/authorize/consent → 303 {redirect_uri}?error=access_denied
test('signing in sends the browser on to the client under the real CSP', async () => {
  const { ctx, page } = await rpContext();
  const said = consoleErrors(page);
  const req = authorizeRequest(portal.client_id);
  await page.goto(req.url);
  await fillSignIn(page);
  try {
    const cb = await callback(page).catch((e) => assert.fail(`${e.message}\nChromium: ${said.join('\n')}`));
    assert.equal(cb.get('state'), req.state);
    assert.ok(cb.get('code'));
  } finally {
    await ctx.close();
  }
});

test('answering the consent page sends the browser on to the client under the real CSP', async () => {
  const { ctx, page } = await rpContext();
  const said = consoleErrors(page);
  const req = authorizeRequest(partner.client_id);
  await page.goto(req.url);
  await fillSignIn(page); // same-origin hops only: the consent page shows
  try {
    await page.getByRole('button', { name: 'Deny' }).click(); // Deny: nothing is remembered
    const cb = await callback(page).catch((e) => assert.fail(`${e.message}\nChromium: ${said.join('\n')}`));
    assert.equal(cb.get('error'), 'access_denied');
    assert.equal(cb.get('state'), req.state);
  } finally {
    await ctx.close();
  }
});

test('front-channel logout loads the portal page in a frame under the CSP, then goes on', async () => {
  const framed = JSON.parse(cli(['client', 'create', '--tenant', 'acme', '--name', 'Framed Portal',
    '--redirect-uri', REDIRECT_URI, '--post-logout-redirect-uri', `${RP}/bye`, '--first-party',
    '--frontchannel-logout-uri', `${RP}/fc-logout`, '--frontchannel-logout-session-required', 'true',
    '--grant', 'authorization_code', '--json']));
  const { ctx, page, hits } = await rpContext();
  const said = consoleErrors(page);
  try {
    const req = authorizeRequest(framed.client_id);
    await page.goto(req.url);
    await fillSignIn(page);
    const cb = await callback(page);
    const t = await token({
      grant_type: 'authorization_code', code: cb.get('code'), redirect_uri: REDIRECT_URI, code_verifier: req.verifier,
    }, framed);
    assert.equal(t.status, 200, JSON.stringify(t.body));
    const sid = jwtPayload(t.body.id_token).sid;
    assert.ok(sid, 'the ID token names the session');
    const logout = new URL(`${issuer}/end-session`);
    logout.searchParams.set('id_token_hint', t.body.id_token);
    logout.searchParams.set('post_logout_redirect_uri', `${RP}/bye`);
    logout.searchParams.set('state', 'fc');
    await page.goto(logout.toString());
    // The frame loaded (the portal saw iss and sid), then the page went on by itself.
    await page.waitForURL(`${RP}/bye?state=fc`).catch((e) => assert.fail(`${e.message}\nChromium: ${said.join('\n')}`));
    const fc = hits().find((h) => h.url.startsWith(`${RP}/fc-logout?`));
    assert.ok(fc, `the front-channel page was loaded: ${JSON.stringify(hits())}`);
    const q = new URL(fc.url).searchParams;
    assert.equal(q.get('iss'), issuer);
    assert.equal(q.get('sid'), sid);
    assert.deepEqual(said.filter((m) => /Content Security Policy/i.test(m)), [], 'no CSP violation');
    await page.goto(`${issuer}/account`);
    assert.match(page.url(), /\/t\/acme\/login/, 'the session ended');
  } finally {
    await ctx.close();
  }
});
