// Shared by the browser tests: a real `lpm serve --demo` on a free port with a temporary data
// directory, headless Chromium through playwright-core, HTTP helpers for a second client, and
// screenshots under <cargo target dir>/browser-artifacts/.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Cargo's target directory, found the way cargo finds it (`CARGO_TARGET_DIR`, a config file's
 * `build.target-dir`, else `<workspace>/target`): `cargo metadata --no-deps` answers without
 * building or resolving anything. It runs in our working directory, so a relative
 * `CARGO_TARGET_DIR` means what it meant to the `cargo build` run from the same place.
 */
export function targetDir() {
  try {
    const out = execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps', '--offline',
      '--manifest-path', join(ROOT, 'Cargo.toml')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(out).target_directory;
  } catch (e) {
    // no cargo on PATH (LPM_BIN set by hand, say): the same rule without config files
    if (e.code !== 'ENOENT') throw new Error(`cargo metadata failed: ${e.stderr || e.message}`);
    const env = process.env.CARGO_TARGET_DIR;
    return env ? resolve(env) : join(ROOT, 'target');
  }
}

const TARGET = targetDir();
export const ARTIFACTS = join(TARGET, 'browser-artifacts');
const BINARY = process.env.LPM_BIN || join(TARGET, 'release', 'lpm');
const CHROMIUM = process.env.LPM_CHROMIUM || '/usr/bin/chromium';

export const ADMIN = { username: 'admin', password: 'admin-demo-password' };
export const RESPONDER = { username: 'responder', password: 'responder-demo-password' };

/** Starts the server; resolves to {base, stop, dataDir, startupMs} once it answers /readyz. */
export async function startServer() {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run cargo build --release first`);
  const dataDir = mkdtempSync(join(tmpdir(), 'lpm-browser-'));
  const started = Date.now();
  const child = spawn(BINARY, ['serve', '--demo', '--auto-assign', '--data-dir', dataDir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('lpm serve did not print its address within 120 s:\n' + out)), 120000);
    const look = () => {
      const m = /serving on (http:\/\/[0-9.:]+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    };
    child.stdout.on('data', look);
    child.on('exit', (code) => fail(new Error(`lpm serve exited with ${code}:\n${out}`)));
  });
  for (let i = 0; ; i += 1) {
    const r = await fetch(base + '/readyz').catch(() => null);
    if (r && r.ok) break;
    if (i > 600) throw new Error('lpm serve never became ready:\n' + out);
    await new Promise((r2) => setTimeout(r2, 200));
  }
  const startupMs = Date.now() - started;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => { child.once('exit', r); setTimeout(r, 10000); });
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { base, stop, dataDir, startupMs, log: () => out };
}

/**
 * Headless Chromium with the flags this machine needs. `launch` gives every run a fresh,
 * temporary user-data-dir (Playwright refuses a `--user-data-dir` flag here and creates one).
 */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A second client: signs in over plain HTTP and returns a fetch bound to its cookie. */
export async function httpClient(base, who) {
  const r = await fetch(base + '/api/v1/session', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(who),
  });
  if (!r.ok) throw new Error(`sign-in as ${who.username} answered ${r.status}`);
  const cookie = r.headers.get('set-cookie').split(';')[0];
  return async (path, { method = 'GET', body } = {}) => {
    const res = await fetch(base + path, {
      method,
      headers: { Cookie: cookie, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { json = null; }
    return { status: res.status, json, text };
  };
}

/** Runs `fn`; on failure saves a screenshot of `page()` as FAIL-<name>.png and rethrows. */
export async function withScreenshot(name, page, fn) {
  try {
    await fn();
  } catch (e) {
    const p = page();
    if (p) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await p.screenshot({ path: join(ARTIFACTS, `FAIL-${name}.png`), fullPage: true }).catch(() => {});
    }
    throw e;
  }
}

/** Saves a success screenshot. */
export async function snap(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Signs in through the UI. */
export async function signIn(page, base, who, lang) {
  await page.goto(base + '/' + (lang ? `?lang=${lang}` : '') + '#/signin');
  await page.locator('#f-username').fill(who.username);
  await page.locator('#f-password').fill(who.password);
  await page.locator('#signin-form button[type=submit]').click();
  await page.waitForURL(/#\/dashboard$/);
}
