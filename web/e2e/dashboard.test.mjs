// Browser tests of the dashboard in real headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core), against the real binary:
// `bounty serve --demo` on a fresh SQLite database in a temporary folder.
//
// The flow a newcomer follows: log in; create an agent and an integration
// when those pages exist; send a signed webhook; watch the task wait for
// the helpdesk (`provisional`, no charge yet: an agent made with no policy
// gets the default, charged only once the ticket is solved); send the
// ticket's `solved` event and watch its charge appear with a receipt; see
// the demo's own helpdesk tickets charged (solved) and not (reopened);
// see a failing task say "No charge"; create an API key, use it, revoke it
// and see it rejected; log out. Every page is screenshotted into web/e2e/artifacts/ (kept when a
// test fails).
//
// The server, browser and helpers are support.mjs's.

import assert from "node:assert/strict";
import { demo, useDemo, step, shot, standardHeaders, waitForText } from "./support.mjs";

useDemo(async () => {
  ({ base, login, operator, integration, browser, page } = demo);
});

let base;
let login;
let operator;
let integration;
let browser;
let page;
let chargedTask;
let created;

step("signed-out pages send you to the login", async () => {
  await page.goto(base + "/tasks");
  assert.match(page.url(), /\/login/);
  await shot("login");
});

step("a wrong password is refused", async () => {
  await page.goto(base + "/login");
  await page.fill("#email", login.email);
  await page.fill("#password", "not-the-password");
  await page.click("button[type=submit]");
  assert.match(await page.locator("[role=alert]").innerText(), /\S/);
});

step("log in and see the overview", async () => {
  await page.goto(base + "/login");
  await page.fill("#email", login.email);
  await page.fill("#password", login.password);
  await page.click("button[type=submit]");
  await page.waitForURL(base + "/");
  const text = await page.locator("main").innerText();
  assert.match(text, /Charges/);
  assert.doesNotMatch(text, /margin|inference cost/i, "a customer never sees our cost or margin");
  assert.ok(await page.locator("svg").count() > 0, "the overview draws a chart");
  await shot("overview");
});

step("create an agent and an integration in the dashboard", async () => {
  await page.goto(base + "/agents/new");
  await page.fill("#name", "e2e-agent");
  await page.fill("#instructions", "Answer the customer kindly.");
  await page.fill("#model_route", "demo");
  await shot("agent-new");
  await page.getByRole("button", { name: /create/i }).click();
  assert.match(await page.locator("main").innerText(), /e2e-agent/);
  await shot("agent");
  await page.goto(base + "/integrations/new");
  // Each helpdesk's setup steps and reply fields, only that one's.
  await page.selectOption("#kind", "zendesk");
  assert.ok(await page.locator('div[data-vendor="zendesk"]').isVisible(), "Zendesk's steps show");
  assert.ok(await page.locator('details[data-vendor="chatwoot"]').isHidden(), "Chatwoot's reply fields hide");
  await shot("integration-new-zendesk");
  await page.selectOption("#kind", "standard");
  assert.ok(await page.locator('details[data-vendor="standard"]').isVisible());
  assert.ok(await page.locator('div[data-vendor="zendesk"]').isHidden());
  await page.fill("#name", "E2E helpdesk");
  await page.selectOption("#agent", { label: "e2e-agent" });
  await page.getByRole("button", { name: "Create integration" }).click();
  const secret = await page.inputValue("#secret");
  const url = await page.inputValue("#inbound-url");
  assert.match(secret, /^whsec_/);
  assert.match(url, /\/webhooks\/in\/int_/);
  await shot("integration-created");
  created = { url: url.startsWith("http") ? url : base + url, secret };
  // Shown once: the integration's own page never shows it again.
  await page.goto(base + "/integrations");
  // A plain substring: the secret's base64 may hold `+` or `/`.
  assert.ok(!(await page.content()).includes(secret.slice(6, 30)), "the secret is shown again");
  await shot("integrations");
});

/** Signs and POSTs a Standard Webhooks event for `ticket` to `target`. */
async function deliver(target, type, data) {
  const body = JSON.stringify({ type, timestamp: new Date().toISOString(), data });
  const resp = await fetch(target.url, { method: "POST", headers: standardHeaders(target.secret, body), body });
  return { status: resp.status, answer: await resp.text() };
}

step("a signed webhook becomes a task charged once the helpdesk says solved", async () => {
  const target = created ?? integration;
  const ticket = `E2E-${Date.now()}`;
  const { status, answer } = await deliver(target, "ticket.created", {
    ticket_id: ticket,
    subject: "Browser test ticket",
    body: "My parcel is late, where is it?",
  });
  assert.equal(status, 202, answer);
  const { task_id } = JSON.parse(answer);
  assert.match(task_id, /^task_/);
  // The task list shows it; its answer waits on the helpdesk, uncharged.
  await waitForText("/tasks", (t) => t.includes("Browser test ticket"));
  await shot("tasks");
  const waiting = await waitForText(`/tasks/${task_id}`, (t) => /provisional/i.test(t));
  assert.match(waiting, /No charge yet/);
  await shot("task-provisional");
  // The helpdesk marks the ticket solved: now it is resolved and charged.
  const solved = await deliver(target, "ticket.solved", { ticket_id: ticket });
  assert.equal(solved.status, 200, solved.answer);
  const detail = await waitForText(`/tasks/${task_id}`, (t) => /resolved/i.test(t) && /Rating receipt/.test(t));
  assert.match(detail, /Verdict receipt/);
  assert.doesNotMatch(detail, /No charge/);
  await shot("task-resolved");
  chargedTask = task_id;
});

step("the demo's helpdesk: a solved ticket is charged, a reopened one is not", async () => {
  await waitForText("/tasks", (t) => t.includes("Where is my refund?") && t.includes("Change my delivery address"));
  await page.locator("tr", { hasText: "Where is my refund?" }).locator("a").first().click();
  const solvedUrl = new URL(page.url()).pathname;
  const solved = await waitForText(solvedUrl, (t) => /Rating receipt/.test(t));
  assert.match(solved, /resolved/i);
  await shot("demo-solved");
  await page.goto(base + "/tasks");
  await page.locator("tr", { hasText: "Change my delivery address" }).locator("a").first().click();
  const reopenedUrl = new URL(page.url()).pathname;
  const reopened = await waitForText(reopenedUrl, (t) => /No charge — not resolved/.test(t));
  assert.doesNotMatch(reopened, /Rating receipt/);
  await shot("demo-reopened");
});

step("usage shows the charges and exports CSV", async () => {
  await page.goto(base + "/usage");
  assert.match(await page.locator("main").innerText(), /USD/);
  await shot("usage");
  const csv = await page.evaluate(async () => (await fetch("/usage.csv")).text());
  assert.match(csv.split("\n")[0], /,/);
});

step("a task whose verifier fails says No charge", async () => {
  const text = await waitForText("/tasks", (t) => t.includes("Cancel my subscription"));
  assert.ok(text.length > 0);
  await page.locator("tr", { hasText: "Cancel my subscription" }).locator("a").first().click();
  const detail = await page.locator("main").innerText();
  assert.match(detail, /No charge — not resolved/);
  await shot("task-failed");
});

step("invoices and billing render", async () => {
  await page.goto(base + "/invoices");
  assert.match(await page.locator("main").innerText(), /paid/i);
  await shot("invoices");
  await page.goto(base + "/billing");
  assert.match(await page.locator("main").innerText(), /plan/i);
  await shot("billing");
});

step("an invoice's charges reconcile with it", async () => {
  await page.goto(base + "/invoices");
  const row = page.locator("tr", { hasText: "in_demo_" });
  const total = (await row.locator("td").nth(3).innerText()).trim();
  const href = await row.locator('a[href^="/charges.csv"]').getAttribute("href");
  const csv = await page.evaluate(async (h) => (await fetch(h)).text(), href);
  const rows = csv.trim().split("\r\n");
  assert.ok(rows.length > 20, `a month of charges: ${rows.length - 2} lines`);
  const minor = Number(/invoiced_amount_minor=(\d+)/.exec(rows[rows.length - 1])[1]);
  assert.ok(minor > 0);
  assert.equal(`${(minor / 100).toFixed(2)} USD`, total, "the invoice's total is its charges' total");
  await shot("invoice-charges");
});

step("the operator console shows every account's margin, apart from the customer's view", async () => {
  await page.goto(base + "/ops");
  await page.waitForURL(base + "/ops/login");
  await page.fill("#email", operator.email);
  await page.fill("#password", operator.password);
  await page.click("button[type=submit]");
  await page.waitForURL(base + "/ops");
  const accounts = await page.locator("main").innerText();
  assert.match(accounts, /Demo \(sample data\)/);
  assert.match(accounts, /Inference cost/);
  assert.match(accounts, /Gross margin/);
  await shot("ops-accounts");
  await page.getByRole("link", { name: "Demo (sample data)" }).click();
  assert.match(await page.locator("main").innerText(), /Prepaid credits/);
  await shot("ops-account");
  await page.goto(base + "/ops/margins");
  const margins = await page.locator("main").innerText();
  assert.match(margins, /Cost-plus/);
  assert.match(margins, /Value-based/);
  assert.equal(await page.locator("svg.hchart").count(), 2);
  await shot("ops-margins");
  // The customer's session is untouched, and its pages still show no margin.
  await page.goto(base + "/");
  assert.doesNotMatch(await page.locator("main").innerText(), /margin|inference cost/i);
});

step("a disputed charge goes to the operator's queue and comes back reversed", async () => {
  await page.goto(base + `/tasks/${chargedTask}`);
  await page.getByText("Dispute this charge").click();
  await page.selectOption("#dispute-reason", "not_resolved");
  await page.fill("#dispute-comment", "The customer says the parcel never came.");
  await page.getByRole("button", { name: "Dispute the charge" }).click();
  await page.waitForURL(new RegExp(`/tasks/${chargedTask}`));
  const mine = await page.locator("main").innerText();
  assert.match(mine, /Dispute/);
  assert.match(mine, /The ticket was not resolved/);
  await shot("dispute-open");
  // The evidence pack downloads with the hash the page shows.
  const href = await page.locator('a[href^="/disputes/"]').getAttribute("href");
  const pack = await page.evaluate(async (h) => {
    const r = await fetch(h);
    return { sha: r.headers.get("x-evidence-sha256"), body: await r.text() };
  }, href);
  assert.ok(mine.includes(pack.sha), "the page shows the pack's SHA-256");
  assert.equal(JSON.parse(pack.body).dispute.reason, "not_resolved");
  // The operator (still signed in to the console) accepts it.
  await page.goto(base + "/ops/disputes");
  assert.match(await page.locator("main").innerText(), /The customer says the parcel never came\./);
  await shot("ops-disputes");
  // The demo's history keeps one dispute waiting too: accept ours.
  await page
    .locator("section", { hasText: "The customer says the parcel never came." })
    .getByRole("button", { name: /^Accept/ })
    .click();
  await page.waitForURL(base + "/ops/disputes");
  assert.doesNotMatch(await page.locator("main").innerText(), /The customer says the parcel never came\./);
  await page.goto(base + `/tasks/${chargedTask}`);
  const after = await page.locator("main").innerText();
  assert.match(after, /accepted, decided by the operator/);
  assert.match(after, /This charge was reversed/);
  await shot("dispute-accepted");
});

step("an API key is shown once, works, and is rejected once revoked", async () => {
  await page.goto(base + "/api-keys");
  await page.fill("#name", "e2e");
  await page.selectOption("#mode", "test");
  await page.getByRole("button", { name: /create/i }).click();
  const secret = await page.inputValue("#secret");
  assert.match(secret, /^bk_test_/);
  await shot("api-key-created");
  const ok = await fetch(base + "/v1/account", { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(ok.status, 200);
  await page.goto(base + "/api-keys");
  assert.ok(!(await page.content()).includes(secret), "the secret is never shown again");
  await page.getByRole("button", { name: "Revoke key e2e" }).click();
  await shot("api-keys");
  const refused = await fetch(base + "/v1/account", { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(refused.status, 401);
});

step("the pages are usable at 375 px", async () => {
  await page.setViewportSize({ width: 375, height: 800 });
  for (const path of ["/", "/tasks", "/api-keys", "/billing", "/usage"]) {
    await page.goto(base + path);
    assert.doesNotMatch(await page.locator("body").innerText(), /margin|inference cost/i, `${path} shows our cost or margin`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${path} scrolls sideways by ${overflow}px at 375 px`);
  }
  await shot("overview-375");
  await page.setViewportSize({ width: 1440, height: 900 });
});

step("log out", async () => {
  await page.goto(base + "/");
  await page.getByRole("button", { name: /log out/i }).click();
  await page.goto(base + "/tasks");
  assert.match(page.url(), /\/login/);
});
