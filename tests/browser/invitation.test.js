// Invitations in a real browser (Debian's Chromium via playwright-core), fields found by their
// labels: an administrator invites through the admin API, the mail (written to the log by a
// development issuer without SMTP) carries the link, and the invited person sets up the account
// with a passkey (a CDP virtual authenticator) or a password and lands signed in. A used link is
// then refused with a page that says why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { latchkeyCli, launchChromium, serve, withAuthenticator, workspace } from './kit.mjs';

let server, browser, base, env, admin;
let serverLog = '';
const cli = (args, input) => latchkeyCli(env, args, input);

before(async () => {
  ({ base, env } = await workspace());
  env.LATCHKEY_MAIL_POLL_SECS = '1';
  cli(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  cli(['group', 'create', '--tenant', 'acme', 'staff']);
  admin = JSON.parse(cli(['admin-token', 'create', '--tenant', 'acme', '--name', 'ci', '--role', 'tenant-admin', '--json'])).token;
  server = await serve(env, (text) => { serverLog += text; });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

/** Invites `email` through the admin API and returns the link its mail carries. */
async function invite(body) {
  const res = await fetch(`${base}/admin/t/acme/invitations`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 201, await res.text());
  const pattern = new RegExp(`${base}/t/acme/invitation\\?token=[A-Za-z0-9_-]{43}`, 'g');
  for (let i = 0; i < 400; i++) {
    const links = [...serverLog.matchAll(pattern)].map((m) => m[0]);
    const mine = links.find((l) => !seen.has(l));
    if (mine) { seen.add(mine); return mine; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no invitation link in the log');
}
const seen = new Set();

const freshBrowser = (t) => withAuthenticator(browser, t);

test('an invitation is accepted with a passkey and the person is signed in', async (t) => {
  const link = await invite({ email: 'pia@acme.test', username: 'pia', display_name: 'Pia Passkey', groups: ['staff'] });
  const { page, credentials, act } = await freshBrowser(t);
  await page.goto(link);
  assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
  await page.getByRole('heading', { name: 'Set up your account' }).waitFor();
  assert.match(await page.locator('main').textContent(), /Your username is pia\./);
  assert.ok(await page.getByLabel('New password').isVisible(), 'the password field has a label');
  const answer = page.waitForResponse((r) => new URL(r.url()).pathname === '/t/acme/invitation/passkey');
  const res = await act(async () => {
    await page.getByRole('button', { name: 'Create my account with a passkey' }).click();
    return answer;
  });
  assert.equal(res.status(), 200, 'the registration is accepted');
  await page.waitForURL(`${base}/t/acme/account`);
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  assert.match(await page.locator('main').textContent(), /Signed in as\s*Pia Passkey/);
  assert.equal((await credentials()).length, 1, 'the authenticator holds the new passkey');
  const user = JSON.parse(cli(['user', 'show', '--tenant', 'acme', 'pia', '--json']));
  assert.equal(user.status, 'active');
  assert.equal(user.has_password, false, 'a passkey-only account');
  const staff = JSON.parse(cli(['group', 'show', '--tenant', 'acme', 'staff', '--json']));
  assert.ok(JSON.stringify(staff).includes('pia'), `pia is in staff: ${JSON.stringify(staff)}`);

  // Signed out, the passkey signs pia in again without a password.
  const conditional = page.waitForResponse((r) => new URL(r.url()).pathname === '/t/acme/login/passkey/options');
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(/\/t\/acme\/login\?signed_out=1/);
  await conditional;
  await page.waitForTimeout(300); // the browser's background get() follows the options
  const button = page.getByRole('button', { name: 'Sign in with a passkey' });
  await act(async () => {
    await button.click();
    await page.waitForURL(`${base}/t/acme/account`);
  });

  // The link is spent: a second visit is refused with a page that says so.
  const again = await page.goto(link);
  assert.equal(again.status(), 410);
  assert.match(await page.getByRole('alert').textContent(), /used already/);
});

test('an invitation is accepted with a password', async (t) => {
  const link = await invite({ email: 'paul@acme.test' });
  const { page } = await freshBrowser(t);
  await page.goto(link);
  await page.getByLabel('New password').fill('short');
  await page.getByRole('button', { name: 'Create my account', exact: true }).click();
  assert.match(await page.getByRole('alert').textContent(), /at least 12 characters/);
  await page.getByLabel('New password').fill('marble-canyon-velvet-31');
  await page.getByRole('button', { name: 'Create my account', exact: true }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
});
