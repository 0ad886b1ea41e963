// The console's SAML onboarding (issue 22) in a real browser (Debian's Chromium via
// playwright-core): a tenant admin, signed in with a passkey, follows the guide for Okta, copies
// the values shown into the IdP (here: the pysaml2 test IdP, tests/saml/idp.py, given our SP
// metadata), creates the connection from the IdP's metadata URL, and runs a test sign-in in a
// new window twice: once accepted (the decoded assertion with the mapped role), once refused
// for the wrong audience (the reason and what to change at the IdP). Every SAML page has no
// serious or critical axe-core violation and is screenshotted into docs/img/.
//
// Latchkey runs with LATCHKEY_OUTBOUND_ALLOW_PRIVATE=127.0.0.1 so that it may fetch the IdP's
// metadata from loopback. The IdP runs as `python3 tests/saml/idp.py --dir DIR` (or
// $LATCHKEY_TEST_PYTHON), as tests/src/saml_idp.rs starts it: its first stdout line is JSON, and
// it exits when its stdin closes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { latchkeyCli, launchChromium, root, serve, withAuthenticator, workspace } from './kit.mjs';

const shots = join(root, 'docs', 'img');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'tulip-gravel-orbit-42';
const NAME = 'okta-corp';
let server, browser, base, env, idp, issuer;
let serverLog = '';

const cli = (args, input) => latchkeyCli(env, args, input);

/** Starts the test IdP; resolves with its JSON line (base_url, metadata_url, entity_id). */
function startIdp() {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-saml-idp-'));
  const python = process.env.LATCHKEY_TEST_PYTHON || 'python3';
  const child = spawn(python, [join(root, 'tests/saml/idp.py'), '--dir', dir],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (c) => { log += c; });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the SAML test IdP did not start in 30 s; is pysaml2 installed (scripts/install-deps.sh --test)? Its log:\n${log}`)), 30000);
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`the SAML test IdP exited (${code}):\n${log}`)); });
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      ok({ child, dir, log: () => log, ...JSON.parse(line) });
    });
  });
}

/** A POST to the IdP's control endpoint `path` that must answer 204. */
async function control(path, body, type) {
  const r = await fetch(`${idp.base_url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
  assert.equal(r.status, 204, `IdP ${path}: ${r.status} ${await r.text()}\n${idp.log()}`);
}

before(async () => {
  ({ base, env } = await workspace());
  env.LATCHKEY_OUTBOUND_ALLOW_PRIVATE = '127.0.0.1'; // hosts, addresses or CIDRs
  issuer = `${base}/t/acme`;
  idp = await startIdp();
  cli(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  cli(['user', 'create', '--tenant', 'acme', '--username', 'tara', '--display-name', 'Tara Admin',
    '--email', 'tara@acme.test', '--password-stdin'], PASSWORD + '\n');
  cli(['role', 'create', '--tenant', 'acme', 'administrator', '--description', 'Runs the wiki']);
  server = await serve(env, (text) => { serverLog += text; });
  browser = await launchChromium();
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  idp?.child.stdin.end();
  idp?.child.kill('SIGTERM');
  if (idp) rmSync(idp.dir, { recursive: true, force: true });
});

/** The JSON answer of the next POST to `path` (a passkey ceremony's finish call). */
function finishAnswer(page, path) {
  return page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === 'POST')
    .then(async (r) => ({ status: r.status(), body: await r.json().catch(() => null) }));
}

/**
 * tara adds a passkey on the account page, is given a tenant-admin console credential, signs
 * out, opens the console and signs in with the passkey (two factors). Her context bypasses the
 * pages' CSP so that the test can inject axe-core.
 */
async function consoleAdmin(t) {
  const b = await withAuthenticator(browser, t, { bypassCSP: true, viewport: { width: 1200, height: 800 } });
  const { page, act, credentials } = b;
  await page.goto(`${base}/t/acme/login`);
  await page.getByLabel('Username or email').fill('tara');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  await page.getByLabel('Name for the new passkey').fill('Laptop');
  const added = finishAnswer(page, '/t/acme/account/passkeys');
  const { status, body } = await act(async () => {
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    return added;
  });
  assert.equal(status, 200, `registration accepted: ${JSON.stringify(body)}`);
  assert.equal((await credentials()).length, 1);
  if (body.recovery_codes) {
    const shown = page.locator('#passkey-recovery');
    await shown.waitFor({ state: 'visible' });
    await shown.getByRole('link', { name: 'Continue' }).click();
  }
  await page.getByRole('button', { name: 'Remove: Laptop' }).waitFor();
  cli(['admin-token', 'create', '--tenant', 'acme', '--name', 'console tara', '--user', 'tara', '--role', 'tenant-admin']);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(/\/t\/acme\/login\?signed_out=1/);

  const conditional = page.waitForResponse((r) => new URL(r.url()).pathname === '/t/acme/login/passkey/options');
  await page.goto(`${base}/t/acme/admin/`);
  assert.equal(new URL(page.url()).pathname, '/t/acme/login');
  await conditional;
  await page.waitForTimeout(300); // the browser's background get() follows the options
  const answer = finishAnswer(page, '/t/acme/login/passkey');
  const signedIn = await act(async () => {
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    return answer;
  });
  assert.equal(signedIn.status, 200, `passkey sign-in: ${JSON.stringify(signedIn.body)}`);
  await page.waitForURL(`${base}/t/acme/admin/`);
  return b;
}

/** The value shown for `term` in the key-value list captioned `caption`. */
function pair(page, caption, term) {
  return page.locator('section', { has: page.getByRole('heading', { name: caption, exact: true }) })
    .locator('dt', { hasText: new RegExp(`^${term.replace(/[()]/g, '\\$&')}$`) })
    .locator('xpath=following-sibling::dd[1]');
}

/** axe-core's violations on the page (injected: the context bypasses the CSP). */
async function axeViolations(page) {
  if (!await page.evaluate(() => typeof window.axe !== 'undefined')) await page.addScriptTag({ content: axeSource });
  return page.evaluate(async () => {
    const { violations } = await window.axe.run(document, { resultTypes: ['violations'] });
    return violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`),
    }));
  });
}

/**
 * Latchkey is at http://localhost (the WebAuthn RP ID), the IdP at http://127.0.0.1: two sites,
 * so the IdP's POST back would lose the sign-in's correlation cookie (SameSite=Lax on an http
 * issuer, where the IdP is meant to be same-site). The test start's redirect to the IdP is
 * therefore pointed at localhost (same request, same port; the IdP listens on 127.0.0.1).
 */
async function idpAtLocalhost(ctx) {
  const at = new URL(idp.base_url);
  await ctx.route((url) => url.pathname === `/t/acme/saml/${NAME}/test`, async (route) => {
    const response = await route.fetch({ maxRedirects: 0 });
    const headers = response.headers();
    const to = new URL(headers.location ?? '', base);
    if (to.host === at.host) to.hostname = 'localhost';
    await route.fulfill({ response, headers: { ...headers, location: to.href } });
  });
}

/**
 * On the connection page: starts a test sign-in, opens the IdP in a new window, waits for that
 * window to end on Latchkey's short page, and follows "2. See the result" in the console.
 */
async function testSignIn(ctx, page) {
  await page.goto(`${base}/t/acme/admin/saml/${NAME}`);
  await page.getByRole('button', { name: 'Start a test sign-in' }).click();
  const open = page.getByRole('button', { name: 'Open the IdP in a new window' });
  await open.waitFor();
  const [popup] = await Promise.all([ctx.waitForEvent('page'), open.click()]);
  // The IdP's page posts itself to the ACS; the window ends on Latchkey's short page.
  await popup.getByText('has finished. Nobody was signed in.').waitFor({ timeout: 15000 }).catch(async (e) => {
    throw new Error(`${e.message}\nthe window at ${popup.url()}: ${await popup.locator('body').innerText().catch(() => '')}\n${serverLog.split('\n').slice(-5).join('\n')}`);
  });
  assert.match(await popup.title(), /Test sign-in finished/);
  assert.ok(popup.url().startsWith(`${issuer}/saml/${NAME}/`), `back at Latchkey: ${popup.url()}`);
  await popup.close();
  await page.getByRole('link', { name: '2. See the result' }).click();
  await page.waitForURL(new RegExp(`/t/acme/admin/saml/${NAME}/tests/[^/]+$`));
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Test sign-in');
}

test('a tenant admin connects an IdP with the guide and runs test sign-ins in a new window', async (t) => {
  const { ctx, page } = await consoleAdmin(t);
  await idpAtLocalhost(ctx);
  const serious = [];
  const audit = async (name) => {
    for (const v of await axeViolations(page)) {
      t.diagnostic(`${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes)`);
      if (v.impact === 'serious' || v.impact === 'critical') serious.push({ page: name, ...v });
    }
  };

  // The connections list, from the navigation; the guide's first step.
  await page.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'SAML connections' }).click();
  await page.waitForURL(`${base}/t/acme/admin/saml`);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'SAML connections');
  await audit('saml list');
  await page.getByLabel('Identity provider', { exact: true }).selectOption({ label: 'Okta' });
  await page.getByLabel('Connection name (a-z, 0-9, -)').fill(NAME);
  await page.getByRole('button', { name: 'Next: what to enter at the IdP' }).click();
  await page.waitForURL(/\/t\/acme\/admin\/saml\?kind=okta&name=/);

  // The values to copy into Okta.
  const caption = 'Enter these values in Okta';
  assert.equal(await pair(page, caption, 'Audience URI (SP Entity ID)').textContent(), `${issuer}/saml/${NAME}/metadata`);
  assert.equal(await pair(page, caption, 'Single sign-on URL').textContent(), `${issuer}/saml/${NAME}/acs`);
  await audit('saml guide');
  await page.screenshot({ path: join(shots, 'console-saml-guide.png'), fullPage: true });

  // Then the IdP's metadata URL, and the connection is made.
  const step2 = page.locator('form', { has: page.getByRole('heading', { name: "Then give us the IdP's metadata" }) });
  await step2.getByLabel('Metadata URL (refreshed hourly)').fill(idp.metadata_url);
  await step2.getByRole('button', { name: 'Create connection' }).click();
  await page.waitForURL(new RegExp(`/t/acme/admin/saml/${NAME}\\?notice=`));
  assert.equal(await page.getByRole('status').textContent(), 'Connection created. Run a test sign-in.');
  assert.equal(await pair(page, 'Connection', 'IdP entity ID').textContent(), idp.entity_id);
  assert.match(await pair(page, 'Health', 'Metadata').textContent(), /ok|success/i);
  assert.ok(await page.getByRole('table', { name: 'IdP signing certificates' }).getByRole('row').count() >= 2,
    'the IdP\'s signing certificate is listed');

  // At the IdP: our SP, from the metadata served at the entity ID (which exists, with its
  // signing certificate, once the connection does).
  const md = await fetch(`${issuer}/saml/${NAME}/metadata`);
  assert.equal(md.status, 200);
  await control('/sp', await md.text(), 'application/samlmetadata+xml');

  // The IdP's groups: "admins" becomes the tenant role "administrator".
  cli(['saml', 'update', '--tenant', 'acme', NAME, '--map', 'groups=groups', '--role-map', 'admins=administrator']);
  await page.goto(`${base}/t/acme/admin/saml`);
  const listed = page.getByRole('table', { name: 'SAML connections' }).getByRole('row', { name: new RegExp(NAME) });
  assert.match(await listed.textContent(), new RegExp(idp.entity_id.replace(/[.:/]/g, '\\$&')), 'the IdP entity ID is listed');
  await page.goto(`${base}/t/acme/admin/saml/${NAME}`);
  await audit('saml connection');
  await page.screenshot({ path: join(shots, 'console-saml-connection.png'), fullPage: true });

  // 1: accepted. The decoded assertion and the role it maps to.
  await testSignIn(ctx, page);
  assert.equal(await pair(page, 'Test sign-in', 'Status').textContent(), 'succeeded');
  await page.getByRole('heading', { name: 'Decoded assertion' }).waitFor();
  assert.equal(await pair(page, 'Decoded assertion', 'Issuer').textContent(), idp.entity_id);
  assert.match(await pair(page, 'Decoded assertion', 'NameID').textContent(), /^alice@corp\.example \(/);
  assert.match(await pair(page, 'Decoded assertion', 'Roles they map to').textContent(), /administrator/);
  const attributes = page.getByRole('table', { name: 'Attributes' });
  assert.ok(await attributes.getByRole('row', { name: /groups/ }).count() >= 1, 'the groups attribute is listed');
  await audit('saml test succeeded');
  await page.screenshot({ path: join(shots, 'console-saml-test-success.png'), fullPage: true });

  // 2: the IdP says the wrong audience. Refused, with the reason and the fix.
  await control('/next', JSON.stringify({ case: 'wrong_audience' }), 'application/json');
  await testSignIn(ctx, page);
  assert.equal(await pair(page, 'Test sign-in', 'Status').textContent(), 'refused');
  await page.getByRole('heading', { name: 'Refused' }).waitFor();
  assert.equal(await pair(page, 'Refused', 'Reason').textContent(), 'audience');
  const hint = await pair(page, 'Refused', 'What to change at the IdP').textContent();
  assert.ok(hint.includes(`${issuer}/saml/${NAME}/metadata`), `the hint names our entity ID: ${hint}`);
  await audit('saml test refused');
  await page.screenshot({ path: join(shots, 'console-saml-test-refused.png'), fullPage: true });

  assert.deepEqual(serious, [], `serious or critical violations:\n${JSON.stringify(serious, null, 2)}`);
});
