// Browser tests of the verifier policy form and its history, in real
// headless Chromium against `bounty serve --demo` (support.mjs).
//
// The owner opens the demo's strict agent, sees only the chosen kind's
// settings in each verifier row, widens the window, adds a rule line and a
// judge in the empty row, and saves: a new version. Saving again unchanged
// changes nothing in the policy. A wrong field is named beside it. The
// policy page lists the version and its diff shows the change, each line
// marked with a sign and a word, not by colour alone. At 390 px the form
// and the diff do not overflow.

import assert from "node:assert/strict";
import { join } from "node:path";
import { demo, useDemo, step, shot, artifacts } from "./support.mjs";

let base;
let page;
let agentPath;

useDemo(async () => {
  ({ base, page } = demo);
});

/** The element whose id is `id` (ids here hold brackets and dots). */
const byId = (id) => page.locator(`[id="${id}"]`);

step("log in and open the strict agent", async () => {
  await page.goto(base + "/login");
  await page.fill("#email", demo.login.email);
  await page.fill("#password", demo.login.password);
  await page.click("button[type=submit]");
  await page.waitForURL(base + "/");
  await page.goto(base + "/agents");
  await page.getByRole("link", { name: "demo-strict" }).click();
  agentPath = new URL(page.url()).pathname;
  assert.match(agentPath, /^\/agents\/agt_/);
  const text = await page.locator("main").innerText();
  assert.match(text, /Verifier 1: must match the pattern “\(\?i\)refund issued”/);
  assert.doesNotMatch(await page.content(), /name="verifier_policy"/, "no JSON textarea");
});

step("each verifier row shows only its kind's settings", async () => {
  assert.equal(await byId("verifiers[0].kind").inputValue(), "rules");
  assert.ok(await byId("verifiers[0].must_match").isVisible(), "the rules row shows its rules");
  assert.ok(await byId("verifiers[0].rubric").isHidden(), "and hides the judge's settings");
  assert.equal(await byId("verifiers[1].kind").inputValue(), "", "an empty row to add another");
  assert.ok(await byId("verifiers[1].rubric").isHidden());
  await page.selectOption('[id="verifiers[1].kind"]', "judge");
  assert.ok(await byId("verifiers[1].rubric").isVisible(), "choosing judge shows its settings");
  assert.ok(await byId("verifiers[1].must_match").isHidden());
  // Labels are tied to their fields.
  await page.getByLabel("Window (hours)").fill("48");
  await shot("policy-form");
});

step("a wrong field is named beside it, with every other", async () => {
  await byId("verifiers[1].rubric").fill("");
  await page.fill('[id="csat_threshold"]', "9");
  await page.getByRole("button", { name: "Save as a new version" }).click();
  const alert = await page.locator("[role=alert]").innerText();
  assert.match(alert, /Verifier 2: judge model|Verifier 2: rubric/);
  assert.match(await byId("verifiers[1].rubric-error").innerText(), /Rubric: must not be empty/);
  assert.match(await byId("csat_threshold-error").innerText(), /between 1 and 5/);
  assert.equal(await byId("verifiers[1].kind").inputValue(), "judge", "what was chosen is kept");
  assert.equal(await byId("window_hours").inputValue(), "48", "what was typed is kept");
  await shot("policy-form-errors");
});

step("the edited policy is saved as a new version", async () => {
  await page.fill('[id="csat_threshold"]', "4");
  await page.selectOption('[id="verifiers[1].model"]', "demo");
  await byId("verifiers[1].rubric").fill("Did the reply promise a refund?");
  await byId("verifiers[1].threshold").fill("0.8");
  const rules = byId("verifiers[0].must_not_match");
  await rules.fill("(?i)as an AI");
  await page.getByRole("button", { name: "Save as a new version" }).click();
  await page.waitForURL(/saved=1/);
  const text = await page.locator("main").innerText();
  assert.match(text, /Saved as version 2/);
  assert.match(text, /Window: 48 hours/);
  assert.match(text, /Verifier 2: judge with model demo, threshold 0\.8 — rubric: “Did the reply promise a refund\?”/);
});

step("saving the form unchanged leaves the policy as it is", async () => {
  await page.goto(base + agentPath);
  await page.getByRole("button", { name: "Save as a new version" }).click();
  await page.waitForURL(/saved=1/);
  assert.match(await page.locator("main").innerText(), /Saved as version 3/);
  await page.goto(base + agentPath + "/policy?from=2&to=3");
  assert.match(await page.locator("main").innerText(), /The policy is the same in both versions/);
});

step("the history lists the change and the diff shows it", async () => {
  await page.goto(base + agentPath);
  await page.getByRole("link", { name: /Policy history/ }).click();
  const history = page.locator("table");
  assert.ok(await history.locator('tr[data-version="2"]').count() === 1, "version 2 changed the policy");
  assert.ok(await history.locator('tr[data-version="3"]').count() === 0, "version 3 did not");
  await page.getByRole("link", { name: "What changed in version 2" }).click();
  const main = await page.locator("main").innerText();
  assert.match(main, /Changes from version 1 to version 2/);
  const removed = await page.locator("li.diff-removed").allInnerTexts();
  const added = await page.locator("li.diff-added").allInnerTexts();
  assert.ok(removed.some((l) => /−[\s\S]*removed:[\s\S]*Window: 24 hours/.test(l)), removed.join("\n"));
  assert.ok(added.some((l) => /\+[\s\S]*added:[\s\S]*Window: 48 hours/.test(l)), added.join("\n"));
  assert.ok(added.some((l) => /must not match the pattern “\(\?i\)as an AI”/.test(l)), added.join("\n"));
  assert.ok(added.some((l) => /judge with model demo, threshold 0\.8/.test(l)), added.join("\n"));
  assert.ok(await page.locator("li.diff-unchanged").count() > 0, "unchanged lines are shown too");
  await shot("policy-diff");
});

step("at 390 px the form and the diff fit the screen", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of [agentPath, agentPath + "/policy?from=1&to=2"]) {
    await page.goto(base + path);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${path} overflows by ${overflow} px`);
  }
  await page.goto(base + agentPath);
  await shot("policy-form-390");
  await page.locator("fieldset.verifier").first().screenshot({ path: join(artifacts, "policy-verifier-390.png") });
  await page.setViewportSize({ width: 1440, height: 900 });
});
