// Sign-in pages in a real browser (Debian's Chromium via playwright-core), found by their
// labels the way a person finds them. Boots the `latchkey` binary on a fresh SQLite database.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { latchkeyCli, launchChromium, root, serve, workspace } from './kit.mjs';

const shots = join(root, 'docs', 'img');
const PASSWORD = 'tulip-gravel-orbit-42';
let server, browser, base, env;
let serverLog = '';

const cli = (args, input) => latchkeyCli(env, args, input);

before(async () => {
  ({ base, env } = await workspace());
  cli(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  cli(['tenant', 'update', 'acme', '--primary-color', '#0b57d0']);
  cli(['user', 'create', '--tenant', 'acme', '--username', 'alice', '--display-name', 'Alice Example', '--email', 'alice@acme.test', '--password-stdin'], PASSWORD + '\n');
  server = await serve(env, (text) => { serverLog += text; });
  browser = await launchChromium();
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

async function signIn(page, user, password) {
  await page.goto(`${base}/t/acme/login`);
  await page.getByLabel('Username or email').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

test('a person signs in, sees the account page and signs out', async () => {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 760 } });
  const page = await ctx.newPage();
  await page.goto(`${base}/t/acme/login`);
  await page.screenshot({ path: join(shots, 'sign-in.png') });
  await signIn(page, 'alice', PASSWORD);
  await page.waitForURL(`${base}/t/acme/account`);
  assert.match(await page.textContent('main'), /Signed in as Alice Example/);
  await page.screenshot({ path: join(shots, 'account.png'), fullPage: true });
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === 'lk-session-acme');
  assert.ok(session && session.httpOnly && session.sameSite === 'Lax', JSON.stringify(cookies));
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(/\/t\/acme\/login\?signed_out=1/);
  assert.match(await page.textContent('main'), /You have been signed out/);
  await page.goto(`${base}/t/acme/account`);
  assert.match(page.url(), /\/t\/acme\/login/);
  await ctx.close();
});

test('a wrong password is announced as an alert, keyboard only', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/t/acme/login`);
  await page.keyboard.type('alice');           // the username field has focus
  await page.keyboard.press('Tab');
  await page.keyboard.type('not-the-password');
  await page.keyboard.press('Enter');
  const alert = page.getByRole('alert');
  assert.equal(await alert.textContent(), 'The username or password is incorrect.');
  await page.screenshot({ path: join(shots, 'sign-in-error.png') });
  await ctx.close();
});

test('sign out everywhere ends the other browser too; a password change works', async () => {
  const laptop = await (await browser.newContext()).newPage();
  const phone = await (await browser.newContext()).newPage();
  await signIn(laptop, 'alice', PASSWORD);
  await signIn(phone, 'alice', PASSWORD);
  await laptop.waitForURL(/account/);
  await laptop.reload();
  assert.equal(await laptop.locator('.sessions li').count(), 2);
  await laptop.getByLabel('Current password').fill(PASSWORD);
  await laptop.getByLabel('New password').fill('another-long-phrase-7');
  await laptop.getByRole('button', { name: 'Change password' }).click();
  await laptop.waitForURL(/changed=1/);
  assert.match(await laptop.getByRole('status').textContent(), /password has been changed/);
  await phone.goto(`${base}/t/acme/account`);
  assert.match(phone.url(), /\/t\/acme\/login/, 'the other session ended with the password change');
  await signIn(phone, 'alice', 'another-long-phrase-7');
  await phone.waitForURL(/account/);
  await laptop.getByRole('button', { name: 'Sign out everywhere' }).click();
  await laptop.waitForURL(/signed_out=1/);
  await phone.goto(`${base}/t/acme/account`);
  assert.match(phone.url(), /\/t\/acme\/login/);
});

test('German when the browser asks for it', async () => {
  const ctx = await browser.newContext({ locale: 'de-DE' });
  const page = await ctx.newPage();
  await page.goto(`${base}/t/acme/login`);
  assert.ok(await page.getByLabel('Benutzername oder E-Mail').isVisible());
  assert.equal(await page.getAttribute('html', 'lang'), 'de');
  await ctx.close();
});

test('a forgotten password is reset through the link written to the log', async () => {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 760 } });
  const page = await ctx.newPage();
  await page.goto(`${base}/t/acme/login`);
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.getByLabel('Username or email').fill('alice');
  await page.screenshot({ path: join(shots, 'forgot-password.png') });
  await page.getByRole('button', { name: 'Send reset link' }).click();
  assert.match(await page.getByRole('status').textContent(), /reset link is on its way/);
  // Without SMTP, a development issuer writes the mail to its log.
  const linkPattern = /http:\/\/localhost:\d+\/t\/acme\/password\/reset\?token=[A-Za-z0-9_-]{43}/;
  let link;
  for (let i = 0; i < 200 && !link; i++) {
    link = serverLog.match(linkPattern)?.[0];
    if (!link) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(link, 'the reset link is in the log');
  await page.goto(link);
  assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
  await page.getByLabel('New password').fill('short');
  await page.getByRole('button', { name: 'Set new password' }).click();
  assert.match(await page.getByRole('alert').textContent(), /at least 12 characters \(it has 5\)/);
  await page.screenshot({ path: join(shots, 'reset-password.png') });
  await page.getByLabel('New password').fill('reset-by-mail-phrase-5');
  await page.getByRole('button', { name: 'Set new password' }).click();
  await page.waitForURL(/\/t\/acme\/login\?reset=1/);
  assert.match(await page.getByRole('status').textContent(), /password has been reset/);
  await signIn(page, 'alice', 'reset-by-mail-phrase-5');
  await page.waitForURL(`${base}/t/acme/account`);
  // The link works once.
  await page.goto(link);
  assert.match(await page.getByRole('alert').textContent(), /invalid, already used or expired/);
  await ctx.close();
});
