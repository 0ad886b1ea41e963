// What every browser suite needs: the `latchkey` binary on a fresh database (SQLite, or
// PostgreSQL + Redis: `backendEnv`) at
// http://localhost:PORT (a domain, so it is also the WebAuthn RP ID), its CLI, a loopback
// server playing an OIDC client, and Debian's Chromium (never a downloaded browser).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { chromium } from 'playwright-core';

export const root = resolve(import.meta.dirname, '../..');
export const bin = join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug', 'latchkey');

export const freePort = () => new Promise((ok) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); });
});

/**
 * The backend the suite runs on: the embedded default (a fresh SQLite file in `work`, sessions
 * in-process), or with LATCHKEY_BROWSER_BACKEND=postgres a fresh PostgreSQL database (dropped
 * when this test file's process exits) and Redis sessions, so each backend passes the same
 * browser suite. LATCHKEY_TEST_POSTGRES_URL / LATCHKEY_TEST_REDIS_URL as the Rust tests use them.
 */
export function backendEnv(work) {
  if (process.env.LATCHKEY_BROWSER_BACKEND !== 'postgres') {
    return { LATCHKEY_DATABASE_URL: `sqlite://${join(work, 'latchkey.db')}` };
  }
  const admin = process.env.LATCHKEY_TEST_POSTGRES_URL || 'postgres://root@127.0.0.1:5432/postgres';
  const name = `latchkey_browser_${randomBytes(6).toString('hex')}`;
  const psql = (sql) => execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', admin, '-c', sql], { stdio: 'pipe' });
  psql(`CREATE DATABASE ${name}`);
  process.on('exit', () => { try { psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); } catch { /* the machine's cleanup */ } });
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    LATCHKEY_DATABASE_URL: url.toString(),
    LATCHKEY_SESSION_STORE: process.env.LATCHKEY_TEST_REDIS_URL || 'redis://127.0.0.1:6379',
  };
}

/** A fresh work directory and the settings of a Latchkey served from it. */
export async function workspace() {
  const work = mkdtempSync(join(tmpdir(), 'latchkey-browser-'));
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const env = {
    PATH: process.env.PATH, WORK: work,
    ...backendEnv(work),
    LATCHKEY_KEYS_DIR: join(work, 'keys'),
    LATCHKEY_LISTEN: `127.0.0.1:${port}`, LATCHKEY_PUBLIC_URL: base, LATCHKEY_LOG: 'warn',
  };
  return { work, base, env };
}

/** Runs the CLI with those settings; its standard output. */
export function latchkeyCli(env, args, input) {
  return execFileSync(bin, args, { env, input, cwd: env.WORK, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
}

/** Starts `latchkey serve`, passing its log to `onLog`; resolves once /readyz answers. */
export async function serve(env, onLog) {
  const server = spawn(bin, ['serve'], { env, cwd: env.WORK, stdio: ['ignore', 'ignore', 'pipe'] });
  server.stderr.on('data', (chunk) => onLog(chunk.toString()));
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(`${env.LATCHKEY_PUBLIC_URL}/readyz`)).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  return server;
}

/**
 * A loopback server playing the client: every request it gets (the redirect URI's code, a
 * form_post body) is pushed to `hits`. Its origin is `.url`.
 */
export async function relyingParty(hits) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const rp = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      hits.push({ url: `${url}${req.url}`, method: req.method, body });
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Portal</title><p>Back at the app.</p>');
    });
  });
  await new Promise((ok) => rp.listen(port, '127.0.0.1', ok));
  rp.url = url;
  return rp;
}

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A fresh context (no session) whose page has a platform authenticator that holds discoverable
 * credentials and verifies its user (CDP WebAuthn domain); closed when test `t` ends.
 *
 * The sign-in page asks for passkeys in the background for the username field's autofill
 * (conditional mediation), and a virtual authenticator that simulates presence answers such a
 * request at once, as if the person had picked the passkey offered there. So presence is off
 * unless the person acts on a passkey (`act`): someone typing a password ignores the offer.
 */
export async function withAuthenticator(browser, t, options = {}) {
  const ctx = await browser.newContext(options);
  t.after(() => ctx.close());
  ctx.setDefaultTimeout(10000);
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  const presence = (enabled) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
  await presence(false);
  const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  /** The person touches the authenticator when asked, during `fn`. */
  const act = async (fn) => {
    await presence(true);
    try { return await fn(); } finally { await presence(false); }
  };
  return { ctx, page, cdp, authenticatorId, credentials, act };
}

export const jwtPayload = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
