// The user's part of an authorization code flow in Debian's Chromium, for the Rust relying-party
// suite (tests/tests/oidc_rp.rs): opens the authorization URL, signs in by label, allows the
// consent page if one shows, and prints the URL the browser is sent to under the redirect URI.
// Usage: node drive-login.mjs AUTHORIZE_URL REDIRECT_PREFIX USERNAME PASSWORD
import { launchChromium } from './kit.mjs';

const [url, prefix, username, password] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await (await browser.newContext()).newPage();
  // Nothing listens at the redirect URI: the request itself is what the client would receive.
  const arrived = new Promise((ok) => page.on('request', (r) => { if (r.url().startsWith(prefix)) ok(r.url()); }));
  await page.goto(url);
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  const first = await Promise.race([arrived, allow.waitFor({ timeout: 15000 }).then(() => null)]);
  const back = first ?? (await allow.click(), await arrived);
  process.stdout.write(back + '\n');
} finally {
  await browser.close();
}
