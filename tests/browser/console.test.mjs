// The local Slack console in a real browser: headless Debian Chromium driven by Playwright.
// Starts the whole local system (target/debug/ct-local up), clicks through both decisions,
// and saves a screenshot for the README (docs/console.png).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const root = new URL("../../", import.meta.url).pathname;
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
let system;
let consoleUrl;
let browser;
const printed = [];

function startSystem() {
  const exe = `${root}target/debug/ct-local`;
  if (!existsSync(exe)) throw new Error(`${exe} is missing: run cargo build --workspace --bins (scripts/test does)`);
  system = spawn(exe, ["up", "--port", "0"], { cwd: root, stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("ct-local did not print its console URL within 120 s")), 120_000);
    system.on("exit", (code) => reject(new Error(`ct-local exited early with ${code}`)));
    createInterface({ input: system.stdout }).on("line", (line) => {
      process.stdout.write(`[ct-local] ${line}\n`);
      printed.push(line);
      const m = line.match(/^console: (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
}

before(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: apt-get install -y chromium (scripts/test installs it when run as root)`);
  }
  consoleUrl = await startSystem();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  system?.kill("SIGINT");
});

const message = (page, text) => page.locator("article.msg", { hasText: text });
// One time format everywhere in the console, in the browser's zone.
const LOCAL_TIME = /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/;
const enabled = (page, selector) =>
  page.waitForFunction((s) => !document.querySelector(s).disabled, selector, { timeout: 5000 });

test("Train! asks to confirm, the message is replaced, and the Kubeflow run starts with its link", async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 720 } });
  await page.goto(consoleUrl);
  const question = message(page, "190 new objects in embedding, 10 in faiss. Would you like to train models?");
  await question.waitFor();
  assert.equal(await question.getByRole("button").count(), 2);
  mkdirSync(`${root}docs`, { recursive: true });
  await page.screenshot({ path: `${root}docs/console-question.png` });
  await question.getByRole("button", { name: "Train!" }).click();
  // Slack's confirm dialog, from the button's own confirm object.
  const dialog = page.getByRole("dialog");
  await dialog.getByText("Are you sure?").waitFor();
  await dialog.getByText("Do Train?").waitFor();
  await page.screenshot({ path: `${root}docs/console-confirm.png` });
  await dialog.getByRole("button", { name: "Yes" }).click();
  // The original message is replaced: who and when, no buttons left.
  const approved = message(page, "Approved");
  await approved.waitFor();
  assert.match(await approved.innerText(), new RegExp(`Approved by @ann at ${LOCAL_TIME.source}`));
  assert.match(await approved.innerText(), /190 new objects in embedding, 10 in faiss\./);
  assert.equal(await approved.getByRole("button").count(), 0);
  assert.match(await approved.innerText(), /\(edited\)/);
  // The launch job started one run on the Kubeflow stand-in: its link, and the approval names it.
  const started = message(page, "Training started");
  await started.waitFor();
  const link = started.getByRole("link", { name: "run run-1" });
  assert.match(await link.getAttribute("href"), /\/#\/runs\/details\/run-1$/);
  await message(page, "Approved by @ann").filter({ hasText: "· run run-1" }).waitFor();
  await page.screenshot({ path: `${root}docs/console.png` });
  // The link opens a page of that run: its name and parameters, not the API's JSON.
  const runPage = await browser.newPage();
  await runPage.goto(await link.getAttribute("href"));
  await runPage.getByRole("heading", { name: "Run run-1" }).waitFor();
  const params = runPage.getByRole("table", { name: "Parameters" });
  assert.match(await params.getByRole("row", { name: /approved_by/ }).innerText(), /approved_by\s+ann/);
  assert.match(await runPage.getByRole("table", { name: "Run" }).innerText(), /Name\s+ct-trigger/);
  const shown = await runPage.locator("body").innerText();
  assert.doesNotMatch(shown, /[{}]|"display_name"/, shown);
  await runPage.close();
  await page.close();
});

test("new data, run seek now, No in the dialog sends nothing, then Nope! declines", async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 720 } });
  await page.goto(consoleUrl);
  await message(page, "Approved").waitFor();
  await page.locator("#user").selectOption({ label: "bob" });
  await page.locator("#dataset").selectOption("embedding");
  await page.locator("#count").fill("150");
  await page.getByRole("button", { name: "Add" }).click();
  await page.getByText("added 150 objects to embedding").waitFor();
  await page.getByRole("button", { name: "Run seek now" }).click();
  const question = message(page, "150 new objects in embedding, 0 in faiss. Would you like to train models?");
  await question.waitFor();
  // Deny the confirm dialog: nothing is sent, the buttons stay.
  await question.getByRole("button", { name: "Train!" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "No" }).click();
  await page.waitForTimeout(1500);
  assert.equal(await question.getByRole("button").count(), 2);
  await question.getByRole("button", { name: "Nope!" }).click();
  const declined = message(page, "Declined");
  await declined.waitFor();
  assert.match(await declined.innerText(), /Declined by @bob at/);
  assert.equal(await declined.getByRole("button").count(), 0);
  // Only one run: from the first approval, none for the decline.
  await page.waitForTimeout(1000);
  assert.equal(await message(page, "Training started").count(), 1);
  await page.close();
});

// A page that records what went wrong in it: script errors and failed requests.
async function watchedPage() {
  const page = await browser.newPage({ viewport: { width: 1200, height: 720 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });
  await page.goto(consoleUrl);
  await page.locator("article.msg").first().waitFor();
  return { page, problems };
}

test("every message shows its time, and mrkdwn is rendered, not printed", async () => {
  const { page, problems } = await watchedPage();
  const times = await page.locator("article.msg").evaluateAll((rows) =>
    rows.map((r) => (r.querySelector(".when") || {}).textContent));
  assert.ok(times.length > 0);
  for (const t of times) assert.match(t || "", /^\d{2}:\d{2}:\d{2}$/, JSON.stringify(times));
  const text = await page.locator("#messages").innerText();
  assert.doesNotMatch(text, /[*`]|<!date|\d{4}-\d{2}-\d{2}T/, text);
  // A date token and the same instant in ISO 8601 read the same.
  const [token, iso] = await page.evaluate(() => {
    const div = document.createElement("div");
    const read = (m) => { div.innerHTML = mrkdwn(m); return div.textContent; };
    return [read("<!date^1796246067^{date_short_pretty} at {time}|2026-12-02T21:14:27Z>"), read("2026-12-02T21:14:27Z")];
  });
  assert.equal(token, iso);
  assert.match(token, new RegExp(`^${LOCAL_TIME.source}$`));
  assert.deepEqual(problems, []);
  await page.close();
});

test("the start line says the result plainly and the console has a favicon", async () => {
  const first = printed.find((l) => l.startsWith("first seek: "));
  assert.match(first, /^first seek: posted \(/);
  const { page, problems } = await watchedPage();
  const icon = await page.locator("link[rel=icon]").getAttribute("href");
  const res = await page.request.get(new URL(icon, consoleUrl).href);
  assert.equal(res.status(), 200);
  assert.equal((await page.request.get(`${consoleUrl}favicon.ico`)).status(), 200);
  assert.deepEqual(problems, []);
  await page.close();
});

test("a bad Add shows the server's error in the footer and the page keeps working", async () => {
  const { page, problems } = await watchedPage();
  const add = page.getByRole("button", { name: "Add" });
  for (const bad of ["-5", "2.5"]) {
    await page.locator("#count").fill(bad);
    await add.click();
    await page.locator("#log", { hasText: `count must be a whole number from 1 to 5000, not ${bad}` }).waitFor();
    await enabled(page, "#add");
  }
  // An empty box says what to enter.
  await page.locator("#count").fill("");
  await add.click();
  await page.locator("#log", { hasText: "enter how many objects to add, 1 to 5000" }).waitFor();
  assert.doesNotMatch(await page.locator("#log").innerText(), /not 0/);
  await enabled(page, "#add");
  // The 400s are the answers under test; nothing else failed, and no script threw.
  assert.deepEqual(problems.filter((p) => !p.startsWith("400 ") || !p.endsWith("/api/objects")), []);
  await page.locator("#count").fill("3");
  await add.click();
  await page.locator("#log", { hasText: "added 3 objects to embedding" }).waitFor();
  await page.close();
});

test("a double-clicked Run seek now sends one request and posts one message", async () => {
  const { page, problems } = await watchedPage();
  let seeks = 0;
  page.on("request", (r) => { if (r.url().endsWith("/api/seek")) seeks += 1; });
  const before = await page.locator("article.msg").count();
  const button = page.getByRole("button", { name: "Run seek now" });
  await button.dblclick();
  await page.locator("#log", { hasText: /^seek: posted/ }).waitFor();
  await page.waitForTimeout(1500);
  assert.equal(seeks, 1);
  assert.equal(await page.locator("article.msg").count(), before + 1);
  await enabled(page, "#seek");
  assert.deepEqual(problems, []);
  await page.close();
});

test("a long word wraps instead of pushing the page sideways", async () => {
  const line = printed.find((l) => l.startsWith("send Function URL:"));
  const [, token, url] = line.match(/Bearer (\S+)' .* (\S+)\/$/);
  // No hyphen or other break opportunity: only overflow-wrap can break it.
  const word = `step${"0123456789abcdef".repeat(50)}`;
  const res = await fetch(`${url}/`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ text: word }),
  });
  assert.ok(res.ok, `send answered ${res.status}: ${await res.text()}`);
  const { page } = await watchedPage();
  const notice = message(page, word.slice(0, 60));
  await notice.waitFor();
  const box = page.locator("#messages");
  const [scroll, client] = await box.evaluate((el) => [el.scrollWidth, el.clientWidth]);
  assert.ok(scroll <= client, `the channel scrolls sideways: ${scroll} > ${client}`);
  const width = await notice.evaluate((el) => el.getBoundingClientRect().width);
  assert.ok(width <= client, `the message is ${width}px wide in a ${client}px channel`);
  await page.close();
});

test("a large Add shows its progress with Add disabled, then the number added", async () => {
  const { page, problems } = await watchedPage();
  const add = page.getByRole("button", { name: "Add" });
  await page.locator("#dataset").selectOption("faiss");
  await page.locator("#count").fill("600");
  await add.click();
  await page.locator("#log", { hasText: /adding objects to faiss: \d+ of 600 so far/ }).waitFor();
  assert.equal(await add.isDisabled(), true);
  await page.locator("#log", { hasText: "added 600 objects to faiss" }).waitFor({ timeout: 120_000 });
  await enabled(page, "#add");
  assert.deepEqual(problems, []);
  await page.close();
});

test("Kubeflow answering 401 is explained with Retry, and Retry starts the run once", async () => {
  const { page, problems } = await watchedPage();
  await page.locator("#kfp").selectOption("401");
  await page.getByText("Kubeflow stand-in: next launch answers 401").waitFor();
  await page.locator("#user").selectOption({ label: "ann" });
  await page.locator("#dataset").selectOption("faiss");
  await page.locator("#count").fill("600");
  await enabled(page, "#add");
  await page.getByRole("button", { name: "Add" }).click();
  await page.getByText("added 600 objects to faiss").waitFor({ timeout: 60_000 });
  // Earlier tests' questions also name faiss: wait for the one this seek posts,
  // not for an older one that is already on the page (clicking that is refused as superseded).
  // watchedPage waited for the first message, and the console renders them all at once.
  const asked = message(page, "Would you like to train models?");
  const before = await asked.count();
  await enabled(page, "#seek");
  await page.getByRole("button", { name: "Run seek now" }).click();
  const question = asked.nth(before);
  await question.waitFor();
  assert.match(await question.innerText(), /in faiss\. Would you like to train models\?/);
  await question.getByRole("button", { name: "Train!" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Yes" }).click();
  const failed = message(page, "Could not start the training run: Kubeflow needs authentication");
  await failed.waitFor({ timeout: 20_000 });
  await page.locator("#kfp").selectOption("none");
  await page.getByText("Kubeflow stand-in: next launch works").waitFor();
  await failed.getByRole("button", { name: "Retry" }).click();
  await message(page, "Training started").filter({ hasText: "run run-2" }).waitFor({ timeout: 20_000 });
  await page.waitForTimeout(1000);
  assert.equal(await message(page, "Training started").count(), 2);
  assert.deepEqual(problems, []);
  await page.close();
});

test("the slash command box sends /ct-trigger signed to actions and shows the ephemeral answers", async () => {
  const { page, problems } = await watchedPage();
  await page.locator("article.msg").first().waitFor();
  const before = await page.locator("article.msg").count();
  const send = async (line) => {
    await enabled(page, "#slash-send");
    await page.locator("#slash").fill(line);
    await page.locator("#slash").press("Enter");
  };
  // status: counts against thresholds, the open request, and when the schedule runs next
  await send("/ct-trigger status");
  const status = page.locator(".slash-answer", { hasText: "Next scheduled seek" });
  await status.waitFor();
  const text = await status.innerText();
  assert.match(text, /Only visible to you · \/ct-trigger status/);
  assert.match(text, /embedding: \d+ new \(\d+ seen, \d+ trained\), threshold \d+/);
  assert.match(text, new RegExp(`Next scheduled seek: ${LOCAL_TIME.source} \\(cron\\(0 0 \\? \\* TUE \\*\\) in UTC\\)`));
  assert.equal(await page.locator("#slash").inputValue(), "", "a sent command clears the box");
  // The answer is ann's: bob does not see it, and ann sees it again when she is back.
  await page.locator("#user").selectOption({ label: "bob" });
  await page.waitForFunction(() => !document.querySelector(".slash-answer"), null, { timeout: 5000 });
  await page.locator("#user").selectOption({ label: "ann" });
  await status.waitFor();
  // seek: answered at once, and seek's own message arrives in the channel afterwards
  await send("/ct-trigger seek");
  await page.locator(".slash-answer", { hasText: "Counting now; the result will be posted here." }).waitFor();
  await page.waitForFunction((n) => document.querySelectorAll("article.msg").length > n, before, { timeout: 60_000 });
  // help, and a command that is not installed
  await send("help");
  await page.locator(".slash-answer", { hasText: "Usage: /ct-trigger status" }).waitFor();
  await send("/deploy now");
  await page.locator(".slash-answer.error", { hasText: "only /ct-trigger is installed here" }).waitFor();
  await page.screenshot({ path: `${root}docs/console-slash.png` });
  // The 400 for /deploy is the answer under test; nothing else failed, and no script threw.
  assert.deepEqual(problems.filter((p) => !p.startsWith("400 ") || !p.endsWith("/api/slash")), []);
  await page.close();
});
