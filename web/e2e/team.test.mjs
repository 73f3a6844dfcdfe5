// Teammates in a real browser: the demo's owner invites a viewer from the
// Team page, the one-time link works in a fresh browser (and only once),
// the viewer sees every page with no action form and is refused a forged
// POST, and a password reset through the link the server logs (there is
// no mailer) sets a new password.

import assert from "node:assert/strict";
import { join } from "node:path";
import { artifacts, demo, useDemo, step, shot, signIn } from "./support.mjs";

// The one-time links are logged at info (no mailer), where the request
// spans are too: the test checks that each token is in one line only.
process.env.E2E_RUST_LOG ??= "info";

useDemo();

const VIEWER = "viewer@demo.test";
const FIRST_PASSWORD = "viewer first password";
const NEW_PASSWORD = "viewer second password";

let inviteLink;
/** The viewer's own browser context and page. */
let viewer;

/** Waits until the server's output matches `re` `count` times; the last match. */
async function logged(re, count = 1, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const all = [...demo.stdout.matchAll(new RegExp(re, "g"))];
    if (all.length >= count) return all[all.length - 1];
    if (Date.now() > deadline) throw new Error(`not logged: ${re}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** How many times the server's output holds `text`. */
function timesLogged(text) {
  return demo.stdout.split(text).length - 1;
}

/** The number of POST forms in the page's main content. */
async function actionForms(page) {
  return page.locator('main form[method="post"]').count();
}

step("the owner invites a viewer and sees the link once", async () => {
  const page = demo.page;
  await signIn();
  await page.click('nav a[href="/team"]');
  await page.waitForURL((u) => u.pathname === "/team");
  assert.match(await page.locator("main").innerText(), new RegExp(demo.login.email));
  await page.fill("#invite-email", VIEWER);
  await page.selectOption("#invite-role", "viewer");
  await page.click('form[action="/team/invites"] button[type=submit]');
  await page.waitForURL((u) => u.pathname === "/team/invites");
  inviteLink = await page.inputValue("#invite-link");
  assert.match(inviteLink, /^http:\/\/[^/]+\/invite\/[A-Za-z0-9_-]{43}$/);
  await shot("team-invite-created");
  // No mailer: the same link is in the server's log.
  const token = inviteLink.split("/invite/")[1];
  await logged(`/invite/${token}`);
  // The team page lists the invite, never its link.
  await page.goto(demo.base + "/team");
  const team = await page.locator("main").innerText();
  assert.match(team, /viewer@demo\.test/);
  assert.ok(!(await page.content()).includes(token), "the team page never shows the link");
});

step("the link works in a fresh browser, once", async () => {
  const context = await demo.browser.newContext({ viewport: { width: 1280, height: 900 } });
  viewer = await context.newPage();
  await viewer.goto(inviteLink);
  assert.match(await viewer.locator("main").innerText(), /invited as viewer/);
  await viewer.fill("#password", FIRST_PASSWORD);
  await viewer.fill("#confirm", FIRST_PASSWORD);
  await viewer.click("main button[type=submit]");
  await viewer.waitForURL((u) => u.pathname === "/");
  assert.match(await viewer.locator("header").innerText(), /viewer@demo\.test \(viewer\)/);
  // Followed, posted and used, the token is still in one log line only.
  assert.equal(timesLogged(inviteLink.split("/invite/")[1]), 1);
  // A second use is refused.
  const other = await demo.browser.newPage();
  const again = await other.goto(inviteLink);
  assert.equal(again.status(), 404);
  assert.match(await other.locator("main").innerText(), /This link does not work/);
  await other.close();
});

step("the viewer sees every page and no action form", async () => {
  await viewer.goto(demo.base + "/tasks");
  const task = await viewer.locator("table.tasks tbody a").first().getAttribute("href");
  for (const path of ["/", "/tasks", task, "/agents", "/integrations", "/usage", "/api-keys", "/invoices", "/billing", "/team"]) {
    const response = await viewer.goto(demo.base + path);
    assert.equal(response.status(), 200, path);
    assert.equal(await actionForms(viewer), 0, `${path} shows the viewer an action form`);
  }
  await viewer.screenshot({ path: join(artifacts, "team-viewer.png"), fullPage: true });
  // A forged POST with the session's own token is refused all the same.
  const refused = await viewer.evaluate(async () => {
    const csrf = document.querySelector('form[action="/logout"] input[name=csrf]').value;
    const r = await fetch("/api-keys", { method: "POST", body: new URLSearchParams({ csrf, name: "sneaky" }) });
    return { status: r.status, text: await r.text() };
  });
  assert.equal(refused.status, 403);
  assert.match(refused.text, /Viewers can see this account but not change it/);
});

step("a password reset through the logged link sets a new password", async () => {
  const before = [...demo.stdout.matchAll(/\/password\/reset\/[A-Za-z0-9_-]{43}/g)].length;
  await viewer.click('form[action="/logout"] button');
  await viewer.waitForURL((u) => u.pathname === "/login");
  await viewer.click('a[href="/password/forgot"]');
  await viewer.fill("#email", VIEWER);
  await viewer.click("main button[type=submit]");
  assert.match(await viewer.locator("main").innerText(), /If that email belongs to a user/);
  const link = (await logged(String.raw`https?://\S+/password/reset/[A-Za-z0-9_-]{43}`, before + 1))[0];
  await viewer.goto(link);
  assert.match(await viewer.locator("main").innerText(), /viewer@demo\.test/);
  await viewer.fill("#password", NEW_PASSWORD);
  await viewer.fill("#confirm", NEW_PASSWORD);
  await viewer.click("main button[type=submit]");
  await viewer.waitForURL((u) => u.pathname === "/login");
  assert.match(await viewer.locator("main").innerText(), /Your password was changed/);
  await viewer.fill("#email", VIEWER);
  await viewer.fill("#password", NEW_PASSWORD);
  await viewer.click("main button[type=submit]");
  await viewer.waitForURL((u) => u.pathname === "/");
  assert.match(await viewer.locator("header").innerText(), /\(viewer\)/);
  // The link worked once, and its token is in one log line only.
  const again = await viewer.goto(link);
  assert.equal(again.status(), 404);
  assert.equal(timesLogged(link.split("/password/reset/")[1]), 1);
  await viewer.context().close();
});
