// The admin console (issue 22) in a real browser (Debian's Chromium via playwright-core), found
// by its labels the way an admin finds it: an IT admin holding only the user-manager role signs
// in with a passkey (which counts as two factors), invites someone, disables a user and does not
// see the sections the role may not read; a tenant admin walks every page, which must have no
// serious or critical axe-core violation in English and German, must reflow at 320 CSS px, is
// screenshotted into docs/img/; and the console is usable from the keyboard (skip link, nav).
//
// Boots the `latchkey` binary on a fresh SQLite database at http://localhost:PORT (kit.mjs), so
// the WebAuthn RP ID is `localhost`. Each admin has their own browser context and CDP virtual
// authenticator (kit.mjs). Only the tenant admin's context bypasses the pages' CSP, so that the
// test can inject axe-core; the pages themselves run no script.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { latchkeyCli, launchChromium, root, serve, withAuthenticator, workspace } from './kit.mjs';

const shots = join(root, 'docs', 'img');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'tulip-gravel-orbit-42';
let server, browser, base, env;
let serverLog = '';

const cli = (args, input) => latchkeyCli(env, args, input);

before(async () => {
  ({ base, env } = await workspace());
  cli(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  cli(['tenant', 'update', 'acme', '--primary-color', '#0b57d0']);
  for (const [username, name] of [['ines', 'Ines Helpdesk'], ['tara', 'Tara Admin'], ['bob', 'Bob Example'],
    ['carol', 'Carol Example'], ['dora', 'Dora Example']]) {
    cli(['user', 'create', '--tenant', 'acme', '--username', username, '--display-name', name,
      '--email', `${username}@acme.test`, '--password-stdin'], PASSWORD + '\n');
  }
  // Something on every page: applications, groups, roles, a published key waiting to sign.
  cli(['client', 'create', '--tenant', 'acme', '--name', 'Portal', '--redirect-uri', 'https://portal.acme.test/cb',
    '--grant', 'authorization_code', '--first-party', '--json']);
  cli(['client', 'create', '--tenant', 'acme', '--name', 'Wiki', '--redirect-uri', 'https://wiki.acme.test/oidc',
    '--grant', 'authorization_code', '--json']);
  cli(['group', 'create', '--tenant', 'acme', 'staff', '--description', 'Everyone employed by Acme']);
  cli(['group', 'create', '--tenant', 'acme', 'contractors', '--description', 'External people']);
  cli(['role', 'create', '--tenant', 'acme', 'editor', '--description', 'Edits the wiki']);
  cli(['keys', 'rotate', '--tenant', 'acme', '--alg', 'ES256']);

  server = await serve(env, (text) => { serverLog += text; });
  browser = await launchChromium();
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

/** The JSON answer of the next POST to `path` (a passkey ceremony's finish call). */
function finishAnswer(page, path) {
  return page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === 'POST')
    .then(async (r) => ({ status: r.status(), body: await r.json().catch(() => null) }));
}

/** On the account page: names and adds a passkey (the first factor also shows recovery codes). */
async function addPasskey({ page, credentials, act }, name) {
  await page.waitForURL(`${base}/t/acme/account`);
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  await page.getByLabel('Name for the new passkey').fill(name);
  const answer = finishAnswer(page, '/t/acme/account/passkeys');
  const add = page.getByRole('button', { name: 'Add a passkey' });
  const { status, body } = await act(async () => { await add.click(); return answer; });
  assert.equal(status, 200, `registration accepted: ${JSON.stringify(body)}`);
  assert.equal((await credentials()).length, 1, 'the authenticator made a credential');
  if (body.recovery_codes) {
    const shown = page.locator('#passkey-recovery');
    await shown.waitFor({ state: 'visible' });
    await shown.getByRole('link', { name: 'Continue' }).click();
  }
  await page.waitForURL(`${base}/t/acme/account`);
  await page.getByRole('button', { name: `Remove: ${name}` }).waitFor();
}

/**
 * `username` (a tenant user) adds a passkey on the account page, is given a console credential
 * with `role`, signs out, opens the console, is sent to sign in and signs in with the passkey.
 */
async function consoleAdmin(t, username, role, options = {}) {
  const b = await withAuthenticator(browser, t, options);
  const { page, act } = b;
  await page.goto(`${base}/t/acme/login`);
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await addPasskey(b, 'Laptop');
  cli(['admin-token', 'create', '--tenant', 'acme', '--name', `console ${username}`, '--user', username, '--role', role]);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(/\/t\/acme\/login\?signed_out=1/);

  const conditional = page.waitForResponse((r) => new URL(r.url()).pathname === '/t/acme/login/passkey/options');
  await page.goto(`${base}/t/acme/admin/`);
  const at = new URL(page.url());
  assert.equal(at.pathname, '/t/acme/login', `sent to sign in: ${page.url()}`);
  assert.equal(at.searchParams.get('return_to'), '/t/acme/admin/');
  await conditional;
  await page.waitForTimeout(300); // the browser's background get() follows the options
  const button = page.getByRole('button', { name: 'Sign in with a passkey' });
  const answer = finishAnswer(page, '/t/acme/login/passkey');
  const { status, body } = await act(async () => { await button.click(); return answer; });
  assert.equal(status, 200, `passkey sign-in: ${JSON.stringify(body)}`);
  await page.waitForURL(`${base}/t/acme/admin/`);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Overview');
  return b;
}

/** The console's navigation links, as their visible text. */
async function navLinks(page) {
  return page.getByRole('navigation', { name: 'Console sections' }).getByRole('link').allTextContents();
}

/** The value shown for `term` in the key-value list captioned `caption`. */
function pair(page, caption, term) {
  return page.locator('section', { has: page.getByRole('heading', { name: caption, exact: true }) })
    .locator('dt', { hasText: new RegExp(`^${term}$`) }).locator('xpath=following-sibling::dd[1]');
}

/** axe-core's violations on the page (injected: the test context bypasses the CSP). */
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

test('an IT admin with only user-manager permissions signs in with a passkey', async (t) => {
  const { page } = await consoleAdmin(t, 'ines', 'user-manager');
  const nav = await navLinks(page);
  assert.deepEqual(nav, ['Overview', 'Users', 'Groups and roles', 'Applications']);
  for (const hidden of ['keys', 'policies', 'audit', 'risk']) {
    const res = await page.goto(`${base}/t/acme/admin/${hidden}`);
    assert.equal(res.status(), 403, `${hidden} is refused`);
  }

  // Invites someone from the Users page.
  await page.goto(`${base}/t/acme/admin/`);
  await page.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'Users' }).click();
  await page.waitForURL(`${base}/t/acme/admin/users`);
  const invite = page.getByRole('form', { name: 'Invite someone' });
  await invite.getByLabel('Email').fill('nora@acme.test');
  await invite.getByLabel('Display name').fill('Nora New');
  await invite.getByLabel('Groups (comma-separated)').fill('staff');
  await invite.getByRole('button', { name: 'Send invitation' }).click();
  await page.waitForURL(/\/t\/acme\/admin\/users\?notice=/);
  assert.equal(await page.getByRole('status').textContent(), 'Invitation sent.');
  const invitations = JSON.parse(cli(['invite', 'list', '--tenant', 'acme', '--json']));
  const nora = (invitations.invitations ?? invitations).find((i) => i.email === 'nora@acme.test');
  assert.ok(nora, `the invitation is listed: ${JSON.stringify(invitations)}`);
  assert.equal(nora.status, 'pending');

  // Finds bob, opens his page and disables him (only with the confirmation ticked).
  const search = page.getByRole('form', { name: 'Search' });
  await search.getByLabel('Name, username or email starts with').fill('bob');
  await search.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/\/admin\/users\?q=bob/);
  const found = page.getByRole('table', { name: 'Users' });
  assert.equal(await found.getByRole('row').count(), 2, 'a header row and bob');
  await found.getByRole('link', { name: 'bob' }).click();
  await page.waitForURL(/\/t\/acme\/admin\/users\/[^/?]+$/);
  const bobPage = page.url();
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'User bob');
  assert.equal(await pair(page, 'Profile', 'Status').textContent(), 'active');
  const disable = page.getByRole('form', { name: 'Disable' });
  const confirm = disable.getByLabel('Yes, end their sessions and refuse their sign-ins');
  await disable.getByRole('button', { name: 'Disable user' }).click();
  assert.equal(page.url(), bobPage, 'not sent without the confirmation');
  assert.ok(await confirm.evaluate((box) => box.validity.valueMissing), 'the box must be ticked');
  await confirm.check();
  await disable.getByRole('button', { name: 'Disable user' }).click();
  await page.waitForURL(`${bobPage}?notice=User%20disabled.`);
  assert.equal(await page.getByRole('status').textContent(), 'User disabled.');
  assert.equal(await pair(page, 'Profile', 'Status').textContent(), 'disabled');
  assert.ok(await page.getByRole('form', { name: 'Enable' }).isVisible(), 'now offered: enable');

  // The navigation still lacks what the role may not read.
  const still = await navLinks(page);
  assert.ok(!still.includes('Signing keys') && !still.includes('Policies'), `no keys or policies: ${still}`);
  const audit = cli(['audit', 'export', '--tenant', 'acme', '--format', 'jsonl']);
  assert.match(audit, /"action":"user\.disable"[^\n]*"actor":"console:[^"]*#users:disable"|"actor":"console:[^"]*#users:disable"[^\n]*"action":"user\.disable"/,
    'audited with the console credential');
});

test('a tenant admin\'s console pages: no serious axe violation in English or German, reflow at 320 px', async (t) => {
  const viewport = { width: 1200, height: 800 };
  const { page } = await consoleAdmin(t, 'tara', 'tenant-admin', { bypassCSP: true, viewport });
  const nav = await navLinks(page);
  for (const section of ['Users', 'Groups and roles', 'Applications', 'Policies', 'Signing keys', 'Audit log', 'Sign-in risk']) {
    assert.ok(nav.includes(section), `${section} in ${nav}`);
  }
  await page.goto(`${base}/t/acme/admin/users?q=tara`);
  await page.getByRole('table', { name: 'Users' }).getByRole('link', { name: 'tara' }).click();
  await page.waitForURL(/\/t\/acme\/admin\/users\/[^/?]+$/);
  const user = new URL(page.url()).pathname.split('/').pop();
  // The detail pages: a group, an application with its token preview for tara.
  await page.goto(`${base}/t/acme/admin/groups`);
  await page.getByRole('link', { name: 'staff', exact: true }).click();
  await page.waitForURL(/\/t\/acme\/admin\/groups\/[^/?]+$/);
  const group = new URL(page.url()).pathname.split('/').pop();
  await page.goto(`${base}/t/acme/admin/clients`);
  await page.getByRole('link', { name: 'Wiki', exact: true }).click();
  await page.waitForURL(/\/t\/acme\/admin\/clients\/[^/?]+$/);
  const client = new URL(page.url()).pathname.split('/').pop();
  // tara is also an operator: the system console's pages are walked too.
  cli(['system-token', 'create', '--name', 'operator tara', '--operator', 'acme/tara', '--role', 'system-admin']);
  const pages = [
    ['overview', '', 'Overview', 'Übersicht'],
    ['users', 'users', 'Users', 'Benutzer'],
    ['user', `users/${user}`, 'User tara', 'Benutzer tara'],
    ['groups', 'groups', 'Groups and roles', 'Gruppen und Rollen'],
    ['clients', 'clients', 'Applications', 'Anwendungen'],
    ['policies', 'policies', 'Policies', 'Richtlinien'],
    ['keys', 'keys', 'Signing keys', 'Signaturschlüssel'],
    ['audit', 'audit', 'Audit log', 'Audit-Protokoll'],
    ['risk', 'risk?step_up=40&deny=80', 'Sign-in risk', 'Anmelderisiko'],
    ['group', `groups/${group}`, 'Group staff', 'Gruppe staff'],
    ['client', `clients/${client}?user=tara`, 'Application Wiki', 'Anwendung Wiki'],
    ['system-tenants', 'system/', 'Tenants', 'Mandanten'],
    ['system-tenant', 'system/tenants/acme', 'Tenant acme', 'Mandant acme'],
    ['system-audit', 'system/audit', 'System audit', 'System-Audit'],
  ];
  const serious = [];
  const reflow = [];
  // English first; `ui_locales` then keeps German for the session's later pages.
  for (const [lang, query] of [['en', ''], ['de', 'ui_locales=de']]) {
    for (const [name, path, en, de] of pages) {
      const title = lang === 'de' ? de : en;
      const url = `${base}/t/acme/admin/${path}${query ? (path.includes('?') ? '&' : '?') + query : ''}`;
      const res = await page.goto(url);
      assert.equal(res.status(), 200, `${url}: ${res.status()}`);
      assert.equal(await page.getAttribute('html', 'lang'), lang, url);
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), title, url);
      const violations = await axeViolations(page);
      for (const v of violations) {
        t.diagnostic(`${name} (${lang}): ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes)`);
        if (v.impact === 'serious' || v.impact === 'critical') serious.push({ page: `${name} (${lang})`, ...v });
      }
      if (lang === 'en') {
        await page.screenshot({ path: join(shots, `console-${name}.png`), fullPage: name !== 'audit' });
        // Reflow (WCAG 1.4.10): 320 CSS px wide, as at 400% zoom, needs no sideways scrolling.
        await page.setViewportSize({ width: 320, height: 800 });
        const wide = await page.evaluate(() => document.documentElement.scrollWidth);
        if (wide > 320) {
          // Name the widest element, so a failure says what to fix.
          const culprit = await page.evaluate(() => {
            let worst = null;
            for (const e of document.querySelectorAll('main *')) {
              const r = e.getBoundingClientRect().right;
              if (!worst || r > worst.r) worst = { r, what: `${e.tagName.toLowerCase()}.${e.className} "${e.textContent.slice(0, 40)}" in ${e.parentElement.tagName.toLowerCase()}.${e.parentElement.className}` };
            }
            return worst ? `${worst.what} to ${Math.round(worst.r)}px` : '';
          });
          reflow.push(`${name}: ${wide}px (${culprit})`);
        }
        await page.setViewportSize(viewport);
      }
    }
  }
  assert.deepEqual(reflow, [], 'wider than 320 CSS px');
  // A notice and an error as a form's answer shows them; then the account and sign-in pages.
  await page.goto(`${base}/t/acme/admin/users?ui_locales=en&notice=Invitation%20sent.&error=The%20email%20is%20taken.`);
  assert.equal(await page.getByRole('status').textContent(), 'Invitation sent.');
  assert.equal(await page.getByRole('alert').textContent(), 'The email is taken.');
  const others = [['users with a notice and an error', await axeViolations(page)]];
  await page.goto(`${base}/t/acme/account`);
  others.push(['account', await axeViolations(page)]);
  await page.goto(`${base}/t/acme/admin/`);
  await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/t\/acme\/login\?signed_out=1/);
  others.push(['sign-in', await axeViolations(page)]);
  for (const [name, violations] of others) {
    for (const v of violations) {
      t.diagnostic(`${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes)`);
      if (v.impact === 'serious' || v.impact === 'critical') serious.push({ page: name, ...v });
    }
  }
  assert.deepEqual(serious, [], `serious or critical violations:\n${JSON.stringify(serious, null, 2)}`);
  // Signed out of the console too.
  await page.goto(`${base}/t/acme/admin/users`);
  assert.equal(new URL(page.url()).pathname, '/t/acme/login');
});

test('the console works from the keyboard: skip link first, then the navigation', async (t) => {
  const { page } = await consoleAdmin(t, 'dora', 'user-manager');
  await page.goto(`${base}/t/acme/admin/users`);
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    return { text: el.textContent.trim(), tag: el.tagName, href: el.getAttribute('href'),
      inNav: !!el.closest('nav'), inMain: !!el.closest('main') };
  });
  await page.keyboard.press('Tab');
  const first = await focused();
  assert.deepEqual([first.tag, first.text, first.href], ['A', 'Skip to content', '#main'], JSON.stringify(first));
  assert.ok(await page.getByRole('link', { name: 'Skip to content' }).isVisible(), 'the skip link shows when focused');
  await page.keyboard.press('Enter');
  assert.equal(new URL(page.url()).hash, '#main');
  await page.keyboard.press('Tab');
  const next = await focused();
  assert.ok(next.inMain, `after the skip link, Tab continues in main: ${JSON.stringify(next)}`);
  assert.equal(next.tag, 'INPUT');

  // From the top, Tab reaches every navigation link, in order, before main.
  await page.goto(`${base}/t/acme/admin/users`);
  const reached = [];
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('Tab');
    const f = await focused();
    if (f.inMain) break;
    if (f.inNav) reached.push(f.text);
  }
  assert.deepEqual(reached, await navLinks(page));
});
