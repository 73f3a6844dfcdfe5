// Shared by every browser test file: starts `bounty serve --demo` on a
// fresh SQLite database in a temporary folder, reads its banner (the
// customer and operator logins, the demo integration), launches Debian's
// Chromium through playwright-core, and gives `step`, `shot`,
// `waitForText` and Standard Webhooks signing.
//
// Each test file calls `useDemo()` once at its top level: its own server,
// its own browser, torn down after the file.
//
// Environment: BOUNTY_BIN (default target/debug/bounty), CHROMIUM (default
// /usr/bin/chromium).

import { test, before, after } from "node:test";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { createHmac, randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const bin = process.env.BOUNTY_BIN ?? join(root, "target", "debug", "bounty");
export const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

/**
 * What the running demo offers; filled in by `before`. `page` is a
 * 1440 x 900 page of a fresh browser context.
 */
export const demo = {
  base: undefined,
  login: undefined,
  operator: undefined,
  integration: undefined,
  browser: undefined,
  page: undefined,
  /** Everything the server printed to stdout so far (one-time links land here). */
  stdout: "",
};

let server;
let workdir;

/** Starts `bounty serve --demo` and reads its banner. */
async function startServer() {
  workdir = mkdtempSync(join(tmpdir(), "bounty-e2e-"));
  const env = { ...process.env, RUST_LOG: process.env.E2E_RUST_LOG ?? "warn" };
  for (const k of Object.keys(env)) if (k.startsWith("BOUNTY_") && k.includes("__")) delete env[k];
  delete env.DATABASE_URL;
  server = spawn(bin, ["serve", "--demo", "--listen", "127.0.0.1:0"], {
    cwd: workdir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stderr.on("data", (chunk) => {
    demo.stdout += chunk;
    process.stderr.write(chunk);
  });
  await new Promise((resolveBanner, reject) => {
    const timer = setTimeout(() => reject(new Error(`no demo banner in 60 s: ${demo.stdout}`)), 60_000);
    server.stdout.on("data", (chunk) => {
      demo.stdout += chunk;
      if (/Send a ticket: POST/.test(demo.stdout)) {
        clearTimeout(timer);
        resolveBanner();
      }
    });
    server.on("exit", (code) => reject(new Error(`bounty exited ${code}: ${demo.stdout}`)));
  });
  const out = demo.stdout;
  demo.base = out.match(/bounty listening on (http:\/\/\S+)/)[1];
  const creds = out.match(/sign in as (\S+) with password (\S+)/);
  demo.login = { email: creds[1], password: creds[2] };
  const ops = out.match(/Operator console: \S+, sign in as (\S+) with password (\S+)/);
  demo.operator = { email: ops[1], password: ops[2] };
  const hook = out.match(/POST (\S+\/webhooks\/in\/(int_\w+)) \(Standard Webhooks, secret (whsec_\S+)\)/);
  demo.integration = { url: hook[1], id: hook[2], secret: hook[3] };
}

/**
 * Registers the file's server and browser: started before its tests,
 * stopped after. `ready` runs in the same hook once both are up (Node's
 * root-level hooks are not awaited one after another, so a file's own
 * setup goes here, not in a second `before`).
 */
export function useDemo(ready = async () => {}) {
  before(async () => {
    await startServer();
    demo.browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    demo.page = await demo.browser.newPage({ viewport: { width: 1440, height: 900 } });
    await ready();
  });
  after(async () => {
    await demo.browser?.close();
    server?.kill("SIGTERM");
    if (workdir) rmSync(workdir, { recursive: true, force: true });
  });
}

/** A test whose failure keeps a screenshot of the page it failed on. */
export function step(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (error) {
      const slug = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
      await demo.page?.screenshot({ path: join(artifacts, `FAILED-${slug}.png`), fullPage: true }).catch(() => {});
      throw error;
    }
  });
}

/** A full-page screenshot into artifacts/. */
export async function shot(name) {
  await demo.page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** Signs `body` the Standard Webhooks way with a `whsec_` secret. */
export function standardHeaders(secret, body) {
  const id = `msg_${randomUUID().replaceAll("-", "")}`;
  const ts = Math.floor(Date.now() / 1000).toString();
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const sig = createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": `v1,${sig}`, "content-type": "application/json" };
}

/** Reloads `path` until `predicate(text)` holds, up to `ms`. */
export async function waitForText(path, predicate, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    await demo.page.goto(demo.base + path);
    const text = await demo.page.locator("main").innerText();
    if (predicate(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out on ${path}: ${text.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Signs in through the customer login form (`who` defaults to the demo's customer). */
export async function signIn(who = demo.login) {
  const page = demo.page;
  await page.goto(demo.base + "/login");
  await page.fill("input[name=email]", who.email);
  await page.fill("input[name=password]", who.password);
  await page.click("button[type=submit]");
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
}
