// Passkeys in a real browser (Debian's Chromium via playwright-core), found by their labels the
// way a person finds them: adding one on the account page (the first factor brings recovery
// codes), renaming and removing it, signing in with it without a password or a username, using it
// as the second factor after a password, and an OIDC client seeing the phishing-resistant class.
// Boots the `latchkey` binary on a fresh SQLite database at http://localhost:PORT: the WebAuthn RP
// ID is the public URL's host, `localhost` (a domain; an IP address is never an RP ID).
//
// Each test has its own browser context with its own CDP virtual authenticator (CTAP2, internal,
// resident keys, user verification), so the credentials one test makes are invisible to another.
// The authenticator answers by itself (automaticPresenceSimulation), like a person touching it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import { freePort, jwtPayload, latchkeyCli, launchChromium, relyingParty, root, serve, withAuthenticator, workspace } from './kit.mjs';

const shots = join(root, 'docs', 'img');
const PASSWORD = 'tulip-gravel-orbit-42';
const ACR_PHR = 'urn:latchkey:acr:phr';
let server, rp, browser, base, env, portal, RP, REDIRECT_URI;
const rpHits = [];
let serverLog = '';

const cli = (args, input) => latchkeyCli(env, args, input);

// ---- the server, the client and the browser ------------------------------------------------

before(async () => {
  ({ base, env } = await workspace());
  rp = await relyingParty(rpHits);
  RP = rp.url;
  REDIRECT_URI = `${RP}/cb`;
  // acme: MFA optional (the default, passkeys allowed); one user per test, so nothing mixes.
  cli(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  cli(['tenant', 'update', 'acme', '--primary-color', '#0b57d0']);
  for (const [username, name] of [['alice', 'Alice Example'], ['bob', 'Bob Example'],
    ['carol', 'Carol Example'], ['erin', 'Erin Example'], ['frank', 'Frank Example'], ['grace', 'Grace Example'],
    ['henry', 'Henry Example'], ['ivy', 'Ivy Example']]) {
    cli(['user', 'create', '--tenant', 'acme', '--username', username, '--display-name', name,
      '--email', `${username}@acme.test`, '--password-stdin'], PASSWORD + '\n');
  }
  portal = JSON.parse(cli(['client', 'create', '--tenant', 'acme', '--name', 'Portal',
    '--redirect-uri', REDIRECT_URI, '--grant', 'authorization_code', '--first-party', '--json']));
  assert.ok(portal.client_secret, 'the portal is confidential');
  // vetted: requires attestation from one passkey model (a CA the virtual authenticator's
  // attestation does not chain to).
  cli(['tenant', 'create', 'vetted', '--display-name', 'Vetted Ltd']);
  cli(['tenant', 'update', 'vetted', '--passkey-trust',
    `01020304-0506-0708-0102-030405060708=${join(root, 'crates/latchkey-mfa/src/test-attestation-ca.pem')}`]);
  cli(['user', 'create', '--tenant', 'vetted', '--username', 'vera', '--display-name', 'Vera Vetted',
    '--email', 'vera@vetted.test', '--password-stdin'], PASSWORD + '\n');
  // other: a second tenant on the same host (so the same RP ID), with its own user.
  cli(['tenant', 'create', 'other', '--display-name', 'Other Inc']);
  cli(['user', 'create', '--tenant', 'other', '--username', 'dave', '--display-name', 'Dave Other',
    '--email', 'dave@other.test', '--password-stdin'], PASSWORD + '\n');

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

/** A fresh browser with a passkey authenticator (kit.mjs), and the requests the relying party receives. */
async function freshBrowser(t, options = {}) {
  const since = rpHits.length;
  return {
    ...await withAuthenticator(browser, t, options),
    hits: () => rpHits.slice(since).filter((h) => !h.url.endsWith('/favicon.ico')),
  };
}

/** A fresh authorization request: its URL and the secrets the client keeps. */
function authorizeRequest(clientId, extra = {}) {
  const verifier = b64url(randomBytes(48));
  const state = b64url(randomBytes(16));
  const nonce = b64url(randomBytes(16));
  const url = new URL(`${base}/t/acme/authorize`);
  const params = {
    client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code',
    scope: 'openid profile', state, nonce,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256', ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { url: url.toString(), verifier, state, nonce };
}

/** The authorization response the browser brought to the redirect URI (query mode). */
async function callback(page) {
  await page.waitForURL((u) => u.toString().startsWith(`${REDIRECT_URI}?`))
    .catch((e) => { throw new Error(`not at the redirect URI but at ${page.url()}: ${e.message}`); });
  return new URL(page.url()).searchParams;
}

/** Redeems `code` for `client` (client_secret_basic) at acme's token endpoint. */
async function redeem(client, code, verifier) {
  const enc = (s) => encodeURIComponent(s);
  const res = await fetch(`${base}/t/acme/token`, {
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

async function signOut(page, tenant = 'acme') {
  await page.goto(`${base}/t/${tenant}/account`);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(new RegExp(`/t/${tenant}/login\\?signed_out=1`));
}

/** Whether the browser is signed out of `tenant`: its account page sends it to sign in. */
async function assertSignedOut(page, tenant = 'acme') {
  await page.goto(`${base}/t/${tenant}/account`);
  assert.equal(new URL(page.url()).pathname, `/t/${tenant}/login`, `not signed in to ${tenant}: ${page.url()}`);
}

/** The JSON answer of the next POST to `path` (a passkey ceremony's finish call). */
function finishAnswer(page, path) {
  return page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === 'POST')
    .then(async (r) => ({ status: r.status(), body: await r.json().catch(() => null) }));
}

/** Counts the POSTs to `path` from now on. */
function countPosts(page, path) {
  const seen = [];
  page.on('request', (r) => { if (r.method() === 'POST' && new URL(r.url()).pathname === path) seen.push(r.url()); });
  return () => seen.length;
}

/**
 * On the account page: names and adds a passkey. For the user's first factor the page shows ten
 * recovery codes and a Continue link (followed here); returns the codes, if any.
 */
async function addPasskey({ page, credentials, act }, name, tenant = 'acme') {
  await page.waitForURL(`${base}/t/${tenant}/account`);
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  const before = (await credentials()).length;
  await page.getByLabel('Name for the new passkey').fill(name);
  const answer = finishAnswer(page, `/t/${tenant}/account/passkeys`);
  const add = page.getByRole('button', { name: 'Add a passkey' });
  const { status, body } = await act(async () => { await add.click(); return answer; });
  assert.equal(status, 200, `registration accepted: ${JSON.stringify(body)}`);
  assert.equal((await credentials()).length, before + 1, 'the authenticator made a credential');
  let codes = null;
  if (body.recovery_codes) {
    const shown = page.locator('#passkey-recovery');
    await shown.waitFor({ state: 'visible' });
    assert.match(await shown.getByRole('status').textContent(), /shown only now/);
    codes = (await shown.locator('li code').allTextContents()).map((c) => c.trim());
    assert.equal(codes.length, 10, `ten recovery codes: ${codes}`);
    for (const c of codes) assert.match(c, /^[a-z0-9]{4}(-[a-z0-9]{4}){3}$/);
    assert.equal(new Set(codes).size, 10, 'all different');
    await shown.getByRole('link', { name: 'Continue' }).click();
  }
  await page.waitForURL(`${base}/t/${tenant}/account`);
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  assert.ok(await page.getByRole('button', { name: `Remove: ${name}` }).isVisible(), `${name} is listed`);
  return codes;
}

/**
 * Opens a sign-in page as a person who has not (yet) picked the passkey its username field
 * offers: the page's background (conditional) request is pending when this returns.
 */
async function openSignIn(page, url) {
  const conditional = page.waitForResponse((r) => /\/login\/passkey\/options$/.test(new URL(r.url()).pathname));
  await page.goto(url);
  assert.match(new URL(page.url()).pathname, /^\/t\/[a-z]+\/login$/, `a sign-in page: ${page.url()}`);
  await conditional;
  await page.waitForTimeout(300); // the browser's get() follows the options
  assert.equal(await page.getByLabel('Username or email').getAttribute('autocomplete'), 'username webauthn',
    'the username field offers passkeys (conditional UI)');
}

/** After a passkey button: the page the browser lands on, or the error it shows. */
async function outcome(page, where) {
  const error = page.locator('#passkey-error');
  await Promise.race([
    page.waitForURL(where).catch(() => {}),
    error.waitFor({ state: 'visible' }).catch(() => {}),
  ]);
  if (await error.isVisible().catch(() => false)) return { error: await error.textContent(), url: page.url() };
  return { url: page.url() };
}

/** On a sign-in page: "Sign in with a passkey", no username typed, the authenticator touched. */
async function passkeyButton({ page, act }, where) {
  const button = page.getByRole('button', { name: 'Sign in with a passkey' });
  await button.waitFor({ state: 'visible' });
  assert.equal(await page.getByLabel('Username or email').inputValue(), '', 'no username typed');
  return act(async () => { await button.click(); return outcome(page, where); });
}

/**
 * Opens `url` (a sign-in page, or a flow that leads to one) and picks the passkey the username
 * field offers (the authenticator answers the page's conditional request); the finish answer.
 */
async function autofillSignIn({ page, act }, url, tenant = 'acme') {
  // Leave any sign-in page first: its background request would take the touch meant for `url`.
  await page.goto('about:blank');
  const answer = finishAnswer(page, `/t/${tenant}/login/passkey`);
  return act(async () => { await page.goto(url); return answer; });
}

// Chromium keeps a conditional (autofill) request pending until the person picks a credential,
// and rejects another get() meanwhile: passkey.js aborts it when the button is clicked.

// ---- the tests -------------------------------------------------------------------------------

test('a passkey registered on the account page signs in without a password', async (t) => {
  const b = await freshBrowser(t, { viewport: { width: 900, height: 760 } });
  const { ctx, page, credentials } = b;
  await signIn(page, 'alice');
  await page.waitForURL(`${base}/t/acme/account`);
  assert.match(await page.textContent('main'), /No passkey yet\./);
  const codes = await addPasskey(b, 'Laptop');
  assert.ok(codes, 'the first factor brings recovery codes');

  const [cred] = await credentials();
  assert.equal(cred.rpId, 'localhost', 'the RP ID is the public URL host');
  assert.ok(cred.isResidentCredential, 'a discoverable credential');
  assert.match(await page.textContent('main'), /Laptop · Added/);
  await page.screenshot({ path: join(shots, 'passkeys.png'), fullPage: true });

  // Renaming.
  const rename = page.getByLabel('Rename: Laptop');
  assert.equal(await rename.inputValue(), 'Laptop');
  await rename.fill('Work laptop');
  await page.getByRole('button', { name: 'Rename', exact: true }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  await page.getByLabel('Rename: Work laptop').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Remove: Work laptop' }).isVisible());
  assert.equal(await page.getByRole('button', { name: 'Remove: Laptop', exact: true }).count(), 0);
  await signOut(page);

  // Passwordless: no username, no password.
  await openSignIn(page, `${base}/t/acme/login`);
  await page.screenshot({ path: join(shots, 'passkey-sign-in.png') });
  const got = await passkeyButton(b, `${base}/t/acme/account`);
  assert.equal(got.error, undefined, `no passkey error: ${got.error}`);
  assert.equal(got.url, `${base}/t/acme/account`);
  const after = await page.textContent('main');
  assert.match(after, /Signed in as Alice Example/);
  assert.match(after, /Work laptop · Added .* · last used/);
});

test('the passkey offered in the username field signs in (conditional UI)', async (t) => {
  const b = await freshBrowser(t);
  const { ctx, page } = b;
  await signIn(page, 'grace');
  await addPasskey(b, 'Laptop');
  await signOut(page);

  const { status, body } = await autofillSignIn(b, `${base}/t/acme/login`);
  assert.equal(status, 200, JSON.stringify(body));
  await page.waitForURL(`${base}/t/acme/account`);
  const account = await page.textContent('main');
  assert.match(account, /Signed in as Grace Example/);
  assert.match(account, /Laptop · Added .* · last used/);
  const session = (await ctx.cookies()).find((c) => c.name === 'lk-session-acme');
  assert.ok(session && session.httpOnly && session.sameSite === 'Lax', 'a session cookie');
});

test('a passkey is the second factor after a password', async (t) => {
  const b = await freshBrowser(t);
  const { ctx, page, act } = b;
  await signIn(page, 'bob');
  await addPasskey(b, 'Phone');
  await signOut(page);

  await signIn(page, 'bob');
  await page.waitForURL(/\/t\/acme\/login\/second-factor\?return_to=/);
  const secondFactor = page.url();
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Two-step verification');
  await assertSignedOut(page); // half signed in reaches nothing
  await page.goto(secondFactor);
  const use = page.getByRole('button', { name: 'Use a passkey' });
  await use.waitFor({ state: 'visible' });
  const answer = finishAnswer(page, '/t/acme/login/second-factor/passkey');
  const { status, body } = await act(async () => { await use.click(); return answer; });
  assert.equal(status, 200, JSON.stringify(body));
  await page.waitForURL(`${base}/t/acme/account`);
  assert.match(await page.textContent('main'), /Signed in as Bob Example/);
});

test('user verification is required', async (t) => {
  const b = await freshBrowser(t);
  const { ctx, page, cdp, authenticatorId, credentials } = b;
  await signIn(page, 'carol');
  await addPasskey(b, 'Tablet');
  await signOut(page);
  // The authenticator still holds the credential, but can no longer verify its user.
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
  const finishes = countPosts(page, '/t/acme/login/passkey');

  // An honest browser: the options require user verification, so there is no assertion to send
  // (neither for the autofill offer, answered as the page loads, nor for the button).
  await page.goto('about:blank');
  await b.act(async () => { await page.goto(`${base}/t/acme/login`); await page.waitForTimeout(1500); });
  const got = await passkeyButton(b, `${base}/t/acme/account`);
  assert.match(got.error ?? '', /not allowed/, `the browser refuses: ${JSON.stringify(got)}`);
  assert.equal(await page.locator('#passkey-error').getAttribute('role'), 'alert');
  assert.equal(finishes(), 0, 'nothing was sent to the server');
  await assertSignedOut(page);

  // A client that drops the requirement from the options: the authenticator signs without user
  // verification (UV flag 0), and the server, which asked for it, refuses (W3).
  await page.route('**/t/acme/login/passkey/options', async (route) => {
    const res = await route.fetch();
    const options = await res.json();
    assert.equal(options.publicKey.userVerification, 'required', 'the server asks for user verification');
    options.publicKey.userVerification = 'discouraged';
    await route.fulfill({ response: res, json: options });
  });
  const background = await autofillSignIn(b, `${base}/t/acme/login`);
  assert.equal(background.status, 400, `refused: ${JSON.stringify(background.body)}`);
  assert.equal(background.body.error, 'passkey_refused');
  // A fresh sign-in page: the refused attempt's page has no background request left to cancel,
  // and Chromium may hold the next one until it settles.
  await page.goto(`${base}/t/acme/login`);
  const answer = finishAnswer(page, '/t/acme/login/passkey');
  const shown = await passkeyButton(b, `${base}/t/acme/account`);
  const { status, body } = await answer;
  assert.equal(status, 400, `refused: ${JSON.stringify(body)}`);
  assert.equal(body.error, 'passkey_refused');
  assert.equal(shown.error, 'The passkey was not accepted.');
  assert.equal(new URL(page.url()).pathname, '/t/acme/login');
  await page.unroute('**/t/acme/login/passkey/options');
  await assertSignedOut(page);
  assert.equal((await credentials()).length, 1);
});

test('a credential of another tenant is refused', async (t) => {
  const b = await freshBrowser(t);
  const { ctx, page, credentials } = b;
  await signIn(page, 'dave', 'other');
  await addPasskey(b, 'Other key', 'other');
  const held = await credentials();
  assert.equal(held.length, 1, 'the authenticator holds only the other tenant\'s credential');
  assert.equal(held[0].rpId, 'localhost', 'the same RP ID as acme');

  // On acme's sign-in page the browser offers it (same host) and sends it; acme refuses it,
  // whether picked from the username field's autofill or by the button.
  const background = await autofillSignIn(b, `${base}/t/acme/login`);
  assert.equal(background.status, 400, `refused: ${JSON.stringify(background.body)}`);
  assert.equal(background.body.error, 'passkey_refused');
  // A fresh sign-in page: the refused attempt's page has no background request left to cancel,
  // and Chromium may hold the next one until it settles.
  await page.goto(`${base}/t/acme/login`);
  const answer = finishAnswer(page, '/t/acme/login/passkey');
  const shown = await passkeyButton(b, `${base}/t/acme/account`);
  const { status, body } = await answer;
  assert.equal(status, 400, `refused: ${JSON.stringify(body)}`);
  assert.equal(body.error, 'passkey_refused');
  assert.equal(shown.error, 'The passkey was not accepted.');
  assert.equal(new URL(page.url()).pathname, '/t/acme/login');
  assert.equal((await ctx.cookies()).find((c) => c.name === 'lk-session-acme'), undefined, 'no acme session');
  await assertSignedOut(page, 'acme');

  // It still works where it belongs.
  await signOut(page, 'other');
  const ok = await autofillSignIn(b, `${base}/t/other/login`, 'other');
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  await page.waitForURL(`${base}/t/other/account`);
  assert.match(await page.textContent('main'), /Signed in as Dave Other/);
  await assertSignedOut(page, 'acme');
});

test('removing a passkey', async (t) => {
  const b = await freshBrowser(t);
  const { ctx, page, credentials } = b;
  await signIn(page, 'erin');
  await addPasskey(b, 'Key fob');
  await page.getByRole('button', { name: 'Remove: Key fob' }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  assert.match(await page.textContent('main'), /No passkey yet\./);
  assert.equal(await page.getByRole('button', { name: 'Remove: Key fob' }).count(), 0);
  await signOut(page);

  // The removed credential is still on the authenticator, but the server no longer knows it.
  assert.equal((await credentials()).length, 1);
  const background = await autofillSignIn(b, `${base}/t/acme/login`);
  assert.equal(background.status, 400, `refused: ${JSON.stringify(background.body)}`);
  assert.equal(background.body.error, 'passkey_refused');
  // A fresh sign-in page: the refused attempt's page has no background request left to cancel,
  // and Chromium may hold the next one until it settles.
  await page.goto(`${base}/t/acme/login`);
  const answer = finishAnswer(page, '/t/acme/login/passkey');
  const shown = await passkeyButton(b, `${base}/t/acme/account`);
  const { status, body } = await answer;
  assert.equal(status, 400, `refused: ${JSON.stringify(body)}`);
  assert.equal(body.error, 'passkey_refused');
  assert.equal(shown.error, 'The passkey was not accepted.');
  await assertSignedOut(page);

  // And the password alone signs in again (no factor is left).
  await signIn(page, 'erin');
  await page.waitForURL(`${base}/t/acme/account`);
  assert.match(await page.textContent('main'), /Signed in as Erin Example/);
});

test('an OIDC client gets acr phr and amr with hwk after a passwordless sign-in', async (t) => {
  const b = await freshBrowser(t);
  const { ctx, page, hits } = b;
  await signIn(page, 'frank');
  await addPasskey(b, 'Laptop');
  await signOut(page);

  const req = authorizeRequest(portal.client_id);
  const resumed = page.waitForRequest((r) => new URL(r.url()).pathname === '/t/acme/authorize/resume');
  const { status, body } = await autofillSignIn(b, req.url);
  assert.equal(status, 200, JSON.stringify(body));
  assert.match((await resumed).url(), /\?interaction=/, 'back into the flow');
  const cb = await callback(page);
  assert.equal(cb.get('state'), req.state);
  assert.equal(cb.get('iss'), `${base}/t/acme`);
  assert.ok(cb.get('code'), `a code: ${page.url()}`);
  assert.equal(hits().length, 1);
  const tokens = await redeem(portal, cb.get('code'), req.verifier);
  const id = jwtPayload(tokens.id_token);
  assert.equal(id.nonce, req.nonce);
  assert.equal(id.preferred_username, 'frank');
  assert.ok(id.amr.includes('hwk') && id.amr.includes('user'), JSON.stringify(id.amr));
  assert.ok(!id.amr.includes('pwd'), `no password: ${JSON.stringify(id.amr)}`);
  assert.equal(id.acr, ACR_PHR);
  assert.equal(jwtPayload(tokens.access_token).acr, ACR_PHR, 'the access token says it too');

  // A later request for the phishing-resistant class is met by this session without a page.
  const again = authorizeRequest(portal.client_id, { acr_values: ACR_PHR, prompt: 'none' });
  await page.goto(again.url);
  const cb2 = await callback(page);
  assert.equal(cb2.get('state'), again.state);
  assert.ok(cb2.get('code'), `a code: ${page.url()}`);
  assert.equal(jwtPayload((await redeem(portal, cb2.get('code'), again.verifier)).id_token).acr, ACR_PHR);
});

test('a signature counter that goes backwards is refused and flagged (W4)', async (t) => {
  const b = await freshBrowser(t);
  const { page, cdp, authenticatorId, credentials } = b;
  await signIn(page, 'henry');
  await addPasskey(b, 'Original');
  await signOut(page);
  const ok = await autofillSignIn(b, `${base}/t/acme/login`);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  await page.waitForURL(`${base}/t/acme/account`);
  await signOut(page);
  // A clone of the key: same private key, a counter behind the one the server has seen.
  const [original] = await credentials();
  assert.ok(original.signCount >= 1, `the authenticator counts: ${original.signCount}`);
  await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: original.credentialId });
  await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...original, signCount: 0 } });
  const cloned = await autofillSignIn(b, `${base}/t/acme/login`);
  assert.equal(cloned.status, 400, `refused: ${JSON.stringify(cloned.body)}`);
  assert.equal(cloned.body.error, 'passkey_refused');
  await assertSignedOut(page);
  const audit = cli(['audit', 'export', '--tenant', 'acme', '--format', 'jsonl']);
  assert.match(audit, /counter_regression/, 'the regression is in the audit log');
});

test('an assertion made for another origin is refused (W2)', async (t) => {
  const b = await freshBrowser(t);
  const { ctx, page, credentials } = b;
  await signIn(page, 'ivy');
  await addPasskey(b, 'Laptop');
  await signOut(page);
  const [credential] = await credentials();
  // Another site on the same host (so the same RP ID), another port: another origin.
  const otherPort = await freePort();
  const other = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>Elsewhere</title>');
  });
  await new Promise((ok) => other.listen(otherPort, '127.0.0.1', ok));
  t.after(() => other.close());
  await page.goto(`${base}/t/acme/login`);
  const csrf = await page.getByRole('button', { name: 'Sign in with a passkey' }).getAttribute('data-csrf');
  const options = await page.evaluate(async (token) => {
    const r = await fetch('/t/acme/login/passkey/options', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ csrf: token }),
    });
    return r.json();
  }, csrf);
  // The other site gets the same key (as a phishing page would) and answers the challenge.
  const elsewhere = await ctx.newPage();
  const cdp = await ctx.newCDPSession(elsewhere);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  await cdp.send('WebAuthn.addCredential', { authenticatorId, credential });
  await elsewhere.goto(`http://localhost:${otherPort}/`);
  const response = await elsewhere.evaluate(async (opts) => {
    const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)).buffer;
    const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const pk = opts.publicKey;
    const c = await navigator.credentials.get({ publicKey: { ...pk, challenge: dec(pk.challenge), allowCredentials: [] } });
    const r = c.response;
    return {
      id: c.id, rawId: enc(c.rawId), type: c.type, extensions: {},
      response: {
        clientDataJSON: enc(r.clientDataJSON), authenticatorData: enc(r.authenticatorData),
        signature: enc(r.signature), userHandle: r.userHandle ? enc(r.userHandle) : null,
      },
    };
  }, options);
  const origin = JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString()).origin;
  assert.equal(origin, `http://localhost:${otherPort}`, 'the browser signed for the other origin');
  const answer = await page.evaluate(async ([token, resp]) => {
    const r = await fetch('/t/acme/login/passkey', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ csrf: token, response: resp }),
    });
    return { status: r.status, body: await r.json() };
  }, [csrf, response]);
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  assert.equal(answer.body.error, 'passkey_refused');
  await assertSignedOut(page);
});

test('a tenant that requires attestation refuses an unlisted authenticator (W8)', async (t) => {
  const b = await freshBrowser(t);
  const { page, credentials, act } = b;
  await signIn(page, 'vera', 'vetted');
  await page.waitForURL(`${base}/t/vetted/account`);
  const add = page.getByRole('button', { name: 'Add a passkey' });
  await add.waitFor({ state: 'visible', timeout: 30000 });
  await page.getByLabel('Name for the new passkey').fill('Unvetted');
  const options = page.waitForResponse((r) => new URL(r.url()).pathname === '/t/vetted/account/passkeys/options',
    { timeout: 30000 });
  const answer = finishAnswer(page, '/t/vetted/account/passkeys');
  const errorShown = () => page.locator('#passkey-error').waitFor({ state: 'visible', timeout: 30000 })
    .then(async () => ({ shown: await page.locator('#passkey-error').textContent() }));
  // The person touches the authenticator until the server has answered (or the browser refused).
  const shown = await act(async () => { await add.click(); return Promise.race([answer, errorShown()]); });
  const asked = await (await options).json();
  assert.equal(asked.publicKey.attestation, 'direct', 'attestation is asked for');
  if (shown.shown) assert.fail(`the browser refused before the server: ${shown.shown}`);
  const { status, body } = shown;
  assert.equal(status, 400, `refused: ${JSON.stringify(body)}`);
  assert.equal(body.error, 'passkey_refused');
  await page.locator('#passkey-error').waitFor({ state: 'visible' });
  assert.equal((await credentials()).length, 1, 'the authenticator made one, the server kept none');
  await page.goto(`${base}/t/vetted/account`);
  assert.match(await page.textContent('main'), /No passkey yet\./);
  const audit = cli(['audit', 'export', '--tenant', 'vetted', '--format', 'jsonl']);
  assert.match(audit, /"mfa\.passkey\.register"[^\n]*"failure"|"failure"[^\n]*"mfa\.passkey\.register"/, 'the refusal is audited');
});
