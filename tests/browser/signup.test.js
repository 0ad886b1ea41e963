// Sign-up and email verification in a real browser (Debian's Chromium via playwright-core),
// every field found by its label the way a person finds it. The development issuer has no SMTP:
// mail is written to the server's log, where the tests read the links.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { latchkeyCli, launchChromium, serve, withAuthenticator, workspace } from './kit.mjs';

const PASSWORD = 'tulip-gravel-orbit-42';
const NEW_PASSWORD = 'saffron-kettle-harbour-31';
let server, browser, base, env;
let serverLog = '';

const cli = (args, input) => latchkeyCli(env, args, input);

before(async () => {
  ({ base, env } = await workspace());
  cli(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  cli(['tenant', 'update', 'acme', '--signup', 'open']);
  cli(['user', 'create', '--tenant', 'acme', '--username', 'alice', '--display-name', 'Alice Example', '--email', 'alice@acme.test', '--password-stdin'], PASSWORD + '\n');
  server = await serve(env, (text) => { serverLog += text; });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

/** The link to `path` (verification by default) last mailed to `to` (read from the log), waiting for it. */
async function linkFor(to, path = 'email/verify') {
  const source = `${base.replace(/[.:/]/g, '\\$&')}/t/acme/${path}\\?token=[A-Za-z0-9_-]{43}`;
  for (let i = 0; i < 200; i++) {
    const lines = serverLog.split('\n').filter((l) => l.includes(to) && new RegExp(source).test(l));
    if (lines.length) return lines.at(-1).match(new RegExp(source, 'g')).at(-1);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`no verification link for ${to} in the log`);
}

/** Every visible form field of the page has a label (WCAG 1.3.1, 4.1.2). */
async function everyFieldLabelled(page) {
  const unlabelled = await page.$$eval('input:not([type=hidden]):not([hidden]), select, textarea',
    (els) => els.filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label')).map((e) => e.outerHTML));
  assert.deepEqual(unlabelled, [], page.url());
}

/** Opens a mailed link and presses its button. */
async function confirm(page, link) {
  await page.goto(link);
  await everyFieldLabelled(page);
  assert.match(await page.textContent('main'), /Confirm that .* is your address/);
  await page.getByRole('button', { name: 'Confirm email address' }).click();
  assert.equal(await page.getByRole('status').textContent(), 'Your email address is confirmed.');
}

test('a person signs up, confirms the address from the mailed link and signs in', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/t/acme/login`);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.waitForURL(`${base}/t/acme/signup`);
  await everyFieldLabelled(page);
  await page.getByLabel('Email address', { exact: true }).fill('carol@acme.test');
  await page.getByLabel('Password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Create account', exact: true }).click();
  assert.match(await page.getByRole('status').textContent(), /Check your mail: we sent a message to carol@acme\.test/);

  // A link preview opening the page spends nothing: the person's click still works.
  const link = await linkFor('carol@acme.test');
  assert.equal((await fetch(link)).status, 200);
  await confirm(page, link);
  await page.getByRole('link', { name: 'Continue' }).click();
  await page.waitForURL(/\/t\/acme\/login/);
  await page.getByLabel('Username or email').fill('carol@acme.test');
  await page.getByLabel('Password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  assert.match(await page.locator('#email-state').textContent(), /confirmed/);
  assert.doesNotMatch(await page.locator('#email-state').textContent(), /not confirmed/);
  const shown = JSON.parse(cli(['user', 'show', '--tenant', 'acme', 'carol@acme.test', '--json']));
  assert.equal(shown.email_verified, true);
  await ctx.close();
});

test('an email change on the account page is confirmed again', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/t/acme/login`);
  await page.getByLabel('Username or email').fill('alice');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(`${base}/t/acme/account`);
  await everyFieldLabelled(page);
  await page.getByLabel('Email', { exact: true }).fill('alice.new@acme.test');
  await page.getByRole('button', { name: 'Save profile' }).click();
  await page.waitForURL(/verify_sent=1/);
  assert.match(await page.getByRole('status').textContent(), /A confirmation link is on its way/);
  assert.match(await page.locator('#email-state').textContent(), /not confirmed yet/);

  await confirm(page, await linkFor('alice.new@acme.test'));
  await page.getByRole('link', { name: 'Continue' }).click();
  await page.waitForURL(/\/t\/acme\/account\?verified=1/);
  assert.doesNotMatch(await page.locator('#email-state').textContent(), /not confirmed/);
  await ctx.close();
});

test('a person signs up with a passkey: no password, the address confirmed by the link', async (t) => {
  const { page, credentials, act } = await withAuthenticator(browser, t);
  await page.goto(`${base}/t/acme/signup`);
  await everyFieldLabelled(page);
  await page.getByLabel('Email address', { exact: true }).fill('pia@acme.test');
  await page.getByRole('button', { name: 'Create account with a passkey instead' }).click();
  assert.match(await page.getByRole('status').textContent(), /Open the link in it on this device to create your passkey/);
  assert.throws(() => cli(['user', 'show', '--tenant', 'acme', 'pia@acme.test', '--json']), 'no account before the link');

  await page.goto(await linkFor('pia@acme.test', 'invitation'));
  assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
  await everyFieldLabelled(page);
  assert.match(await page.locator('main').textContent(), /your address is confirmed/);
  const answer = page.waitForResponse((r) => new URL(r.url()).pathname === '/t/acme/invitation/passkey');
  const res = await act(async () => {
    await page.getByRole('button', { name: 'Create my account with a passkey' }).click();
    return answer;
  });
  assert.equal(res.status(), 200, 'the registration is accepted');
  await page.waitForURL(`${base}/t/acme/account`);
  assert.match(await page.locator('#email-state').textContent(), /confirmed/);
  assert.doesNotMatch(await page.locator('#email-state').textContent(), /not confirmed/);
  assert.equal((await credentials()).length, 1, 'the authenticator holds the new passkey');
  const shown = JSON.parse(cli(['user', 'show', '--tenant', 'acme', 'pia@acme.test', '--json']));
  assert.equal(shown.email_verified, true);
  assert.equal(shown.has_password, false, 'a passkey-only account');
});
