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

function startSystem() {
  const exe = `${root}target/debug/ct-local`;
  if (!existsSync(exe)) throw new Error(`${exe} is missing: run cargo build --workspace --bins (scripts/test does)`);
  system = spawn(exe, ["up", "--port", "0"], { cwd: root, stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("ct-local did not print its console URL within 120 s")), 120_000);
    system.on("exit", (code) => reject(new Error(`ct-local exited early with ${code}`)));
    createInterface({ input: system.stdout }).on("line", (line) => {
      process.stdout.write(`[ct-local] ${line}\n`);
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

test("Train! asks to confirm, then the message is replaced and the Kubeflow notice arrives", async () => {
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
  assert.match(await approved.innerText(), /Approved by @ann at/);
  assert.match(await approved.innerText(), /190 new objects in embedding, 10 in faiss\./);
  assert.equal(await approved.getByRole("button").count(), 0);
  assert.match(await approved.innerText(), /\(edited\)/);
  await message(page, "Here is Kubeflow URL").waitFor();
  await page.screenshot({ path: `${root}docs/console.png` });
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
  // Only one Kubeflow notice: from the first approval, none for the decline.
  assert.equal(await message(page, "Here is Kubeflow URL").count(), 1);
  await page.close();
});
