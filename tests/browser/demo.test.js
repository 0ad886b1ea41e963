// `latchkey demo` as a newcomer meets it: the binary run in a fresh directory (embedded SQLite,
// in-process sessions), its printed block read for the URLs and the demo user, then the example
// portal it serves used in Debian's Chromium: sign in at Latchkey, see the checked ID token, the
// access token and UserInfo, sign out through RP-initiated logout. Also: a forged callback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendEnv, bin, freePort, launchChromium, root } from './kit.mjs';

const shots = join(root, 'docs', 'img');
let demo, browser, printed;
let output = '';

/** One value of the printed block, by its label. */
function field(label) {
  const m = output.match(new RegExp(`^  ${label} +(\\S+)$`, 'm'));
  assert.ok(m, `"${label}" in the printed block:\n${output}`);
  return m[1];
}

before(async () => {
  const work = mkdtempSync(join(tmpdir(), 'latchkey-demo-'));
  const [port, portalPort] = [await freePort(), await freePort()];
  const env = {
    PATH: process.env.PATH,
    LATCHKEY_LISTEN: `127.0.0.1:${port}`, LATCHKEY_PUBLIC_URL: `http://localhost:${port}`, LATCHKEY_LOG: 'warn',
  };
  // The embedded default as the README's first command has it; the PostgreSQL + Redis run
  // points the same demo at those.
  if (process.env.LATCHKEY_BROWSER_BACKEND === 'postgres') Object.assign(env, backendEnv(work));
  demo = spawn(bin, ['demo', '--portal-port', String(portalPort)], { env, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout.on('data', (chunk) => { output += chunk; });
  demo.stderr.on('data', (chunk) => { output += chunk; });
  for (let i = 0; i < 600 && !/session store/.test(output); i++) {
    assert.equal(demo.exitCode, null, `latchkey demo exited:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  printed = {
    issuer: field('issuer'), portal: field('example portal'), console: field('admin console'),
    client: field('confidential client'), user: field('user'), password: field('password'),
  };
  browser = await launchChromium();
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  demo?.kill('SIGTERM');
});

async function freshPage(t, options = {}) {
  const ctx = await browser.newContext(options);
  t.after(() => ctx.close());
  ctx.setDefaultTimeout(10000);
  const page = await ctx.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) errors.push(`${m.text()} ${m.location().url}`);
  });
  return { ctx, page, errors };
}

const json = async (page, label) => JSON.parse(await page.getByLabel(label).textContent());

test('the printed block names the portal, the console and the demo client', () => {
  assert.match(printed.portal, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal(printed.issuer, `${printed.console.replace(/\/admin\/$/, '')}`);
  assert.match(printed.console, /^http:\/\/localhost:\d+\/t\/demo\/admin\/$/);
  assert.equal(printed.user, 'demo');
});

test('a newcomer signs in to the example portal and out again', async (t) => {
  const { ctx, page, errors } = await freshPage(t, { viewport: { width: 1000, height: 900 } });
  const home = await page.goto(printed.portal);
  assert.equal(home.headers()['content-security-policy']?.split(';')[0], "default-src 'none'");
  await page.getByText('You are signed out.').waitFor();
  await page.getByRole('button', { name: 'Sign in' }).click();

  await page.getByLabel('Username or email').fill(printed.user);
  await page.getByLabel('Password').fill(printed.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  await allow.or(page.getByLabel('ID token claims')).first().waitFor();
  if (await allow.isVisible()) await allow.click(); // offline_access asks even a first-party client
  await page.waitForURL(printed.portal);

  const claims = await json(page, 'ID token claims');
  assert.ok(claims.sub, 'a subject');
  assert.equal(claims.iss, printed.issuer);
  assert.deepEqual([claims.aud].flat(), [printed.client]);
  const access = await json(page, 'Access token claims');
  assert.equal(access.sub, claims.sub);
  const userinfo = await json(page, 'UserInfo');
  assert.equal(userinfo.sub, claims.sub);
  assert.equal(userinfo.preferred_username, 'demo');
  const cookie = (await ctx.cookies(printed.portal)).find((c) => c.name === 'latchkey_demo_portal');
  assert.ok(cookie?.httpOnly && cookie.sameSite === 'Lax', JSON.stringify(cookie));
  await page.screenshot({ path: join(shots, 'demo-portal.png'), fullPage: true });

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(printed.portal);
  await page.getByText('You are signed out.').waitFor();
  assert.equal(await page.getByLabel('ID token claims').count(), 0);
  // Latchkey's session ended too: signing in again asks for the password.
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Password').waitFor();
  assert.deepEqual(errors, [], 'no CSP violation or script error');
});

test('a callback with a state the browser did not start shows an error and no tokens', async (t) => {
  const { page } = await freshPage(t);
  await page.goto(printed.portal);
  let authorize;
  page.on('request', (r) => { if (r.url().startsWith(`${printed.issuer}/authorize`)) authorize ??= new URL(r.url()); });
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Password').waitFor();
  assert.ok(authorize?.searchParams.get('state'), 'the portal sent a state');
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.ok(authorize.searchParams.get('nonce'));

  const forged = await page.goto(`${printed.portal}callback?code=stolen&state=forged&iss=${encodeURIComponent(printed.issuer)}`);
  assert.equal(forged.status(), 400);
  await page.getByText('The state does not match').waitFor();
  assert.equal(await page.getByLabel('ID token claims').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0);

  // The sign-in is spent: even its real state no longer works.
  const denied = await page.goto(`${printed.portal}callback?error=access_denied&state=${authorize.searchParams.get('state')}`);
  assert.equal(denied.status(), 400);
  await page.getByText('No sign-in was started in this browser').waitFor();
});

test('an error answer from Latchkey reads plainly', async (t) => {
  const { page } = await freshPage(t);
  await page.goto(printed.portal);
  let authorize;
  page.on('request', (r) => { if (r.url().startsWith(`${printed.issuer}/authorize`)) authorize ??= new URL(r.url()); });
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Password').waitFor();
  const state = authorize.searchParams.get('state');
  const res = await page.goto(`${printed.portal}callback?error=access_denied&error_description=${encodeURIComponent('<b>no</b>')}&state=${state}`);
  assert.equal(res.status(), 400);
  await page.getByText('Latchkey answered with an error: access_denied (<b>no</b>)').waitFor(); // escaped, not markup
});
