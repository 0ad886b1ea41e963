// Deleting one's own account from the account page, in a real browser (Debian's Chromium via
// playwright-core), fields found by their labels: a password user confirms with the password (a
// wrong one is refused first), and a passkey-only user (invited, set up with a passkey on a CDP
// virtual authenticator) confirms with the passkey. Both end signed out with the account gone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { latchkeyCli, launchChromium, serve, withAuthenticator, workspace } from './kit.mjs';

const PASSWORD = 'tulip-gravel-orbit-42';
let server, browser, base, env, admin;
let serverLog = '';
const cli = (args, input) => latchkeyCli(env, args, input);

before(async () => {
  ({ base, env } = await workspace());
  env.LATCHKEY_MAIL_POLL_SECS = '1';
  cli(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  cli(['user', 'create', '--tenant', 'acme', '--username', 'alice', '--display-name', 'Alice Example',
    '--email', 'alice@acme.test', '--password-stdin'], PASSWORD + '\n');
  admin = JSON.parse(cli(['admin-token', 'create', '--tenant', 'acme', '--name', 'ci', '--role', 'tenant-admin', '--json'])).token;
  server = await serve(env, (text) => { serverLog += text; });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

const freshBrowser = (t) => withAuthenticator(browser, t);

const userExists = (name) => {
  try { cli(['user', 'show', '--tenant', 'acme', name, '--json']); return true; } catch { return false; }
};

test('a user deletes their account from the account page with their password', async (t) => {
  const { page } = await freshBrowser(t);
  await page.goto(`${base}/t/acme/login`);
  await page.getByLabel('Username or email').fill('alice');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  await page.getByRole('heading', { name: 'Delete my account' }).waitFor();

  await page.getByLabel('Your password, to confirm').fill('not-my-password');
  await page.getByRole('button', { name: 'Delete my account' }).click();
  assert.match(await page.getByRole('alert').textContent(), /password is incorrect\. Your account was not deleted/);
  assert.ok(userExists('alice'));

  await page.getByLabel('Your password, to confirm').fill(PASSWORD);
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await page.waitForURL(`${base}/t/acme/login?deleted=1`);
  assert.match(await page.getByRole('status').textContent(), /Your account has been deleted/);
  assert.equal(userExists('alice'), false, 'alice is gone');
  await page.goto(`${base}/t/acme/account`);
  assert.equal(new URL(page.url()).pathname, '/t/acme/login', 'no session is left');
});

test('a passkey-only user confirms the deletion with their passkey', async (t) => {
  const res = await fetch(`${base}/admin/t/acme/invitations`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: 'pat@acme.test', username: 'pat' }),
  });
  assert.equal(res.status, 201);
  const pattern = new RegExp(`${base}/t/acme/invitation\\?token=[A-Za-z0-9_-]{43}`);
  let link;
  for (let i = 0; i < 400 && !link; i++) {
    link = serverLog.match(pattern)?.[0];
    if (!link) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(link, 'the invitation link is in the log');
  const { page, act } = await freshBrowser(t);
  await page.goto(link);
  await act(async () => {
    await page.getByRole('button', { name: 'Create my account with a passkey' }).click();
    await page.waitForURL(`${base}/t/acme/account`);
  });
  await page.getByRole('heading', { name: 'Delete my account' }).waitFor();
  assert.match(await page.locator('main').textContent(), /has no password: confirm with your passkey/);
  assert.equal(await page.getByLabel('Your password, to confirm').count(), 0, 'no password to ask for');
  await act(async () => {
    await page.getByRole('button', { name: 'Confirm with a passkey and delete my account' }).click();
    await page.waitForURL(`${base}/t/acme/login?deleted=1`);
  });
  assert.equal(userExists('pat'), false, 'pat is gone');
});
