// Drives Debian's Chromium (headless, through playwright-core) over kithd's pages as the
// person meets them on a phone, and checks each with axe-core. Run by
// tests/integration/browser.rs, which starts the real kithd and reads what this prints.
//
// Environment: KITHD_BASE (the answer server), KITHD_LINK (an answer link from a delivered
// message), KITHD_PASSPHRASE, KITHD_SHOTS (where screenshots go). Prints one JSON object:
// per page, axe's violations by impact, the smallest touch target, and whether the page
// overflows 320 px with the text at 200 %. Exits 1 on any failure of its own.
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const { KITHD_BASE: base, KITHD_LINK: link, KITHD_PASSPHRASE: passphrase, KITHD_SHOTS: shots } =
  process.env;

const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "kithd-chromium-")), {
  executablePath: "/usr/bin/chromium",
  headless: true,
  // The pages' own CSP forbids every script; axe is injected by the test, so the test
  // context alone bypasses it. What the pages allow is asserted from their headers.
  bypassCSP: true,
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = browser.pages()[0] ?? (await browser.newPage());
const external = [];
page.on("request", (r) => {
  if (!r.url().startsWith(base)) external.push(r.url());
});
const scripts = [];
page.on("console", (m) => {
  if (m.type() === "error") scripts.push(m.text());
});

const result = { pages: {}, external, console_errors: scripts };

async function check(name) {
  await page.addScriptTag({ content: axeSource });
  const axe = await page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
    });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const smallest = await page.evaluate(() => {
    let min = Infinity;
    for (const el of document.querySelectorAll("button, input:not([type=hidden]), textarea, a")) {
      const r = el.getBoundingClientRect();
      if (el.tagName === "A" && el.closest("p, li") && el.closest("nav") === null) continue; // links in text
      min = Math.min(min, r.height, el.tagName === "A" ? Infinity : r.width);
    }
    return min === Infinity ? null : Math.round(min);
  });
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  // At 320 px wide with the text at 200 %, nothing scrolls sideways.
  await page.setViewportSize({ width: 320, height: 640 });
  await page.evaluate(() => { document.documentElement.style.fontSize = "200%"; });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  await page.evaluate(() => { document.documentElement.style.fontSize = ""; });
  await page.setViewportSize({ width: 390, height: 844 });
  result.pages[name] = { axe, smallest_target: smallest, overflow_320_at_200: overflow, title: await page.title() };
}

try {
  // The answer page from the delivered message: answer with a note.
  let r = await page.goto(link);
  result.pages_status = { answer: r.status() };
  await check("answer");
  await page.fill("textarea[name=note]", "a quiet evening, walked by the river");
  await Promise.all([page.waitForNavigation(), page.click("button[value='4']")]);
  result.confirmation = await page.textContent("main");
  await check("answered");
  // The same link again: a friendly page, nothing recorded.
  r = await page.goto(link);
  result.pages_status.reopened = r.status();
  result.reopened = await page.textContent("main");
  r = await page.request.post(link, { form: { value: "2" } });
  result.pages_status.reused = r.status();
  result.reused = await r.text();
  // An expired-looking (cut) link: the same friendly page.
  r = await page.goto(link.slice(0, -6));
  result.pages_status.cut = r.status();
  result.cut = await page.textContent("main");
  await check("link-not-valid");
  // Today's page, behind the passphrase.
  await page.goto(`${base}/me`);
  await check("sign-in");
  await page.fill("input[name=passphrase]", passphrase);
  await Promise.all([page.waitForNavigation(), page.click("button.primary")]);
  result.today = await page.textContent("main");
  await check("today");
  const cookies = await browser.cookies();
  result.cookie = cookies.find((c) => c.name === "kithd_me") ?? null;
  await page.goto(`${base}/me/report`);
  result.report = await page.textContent("main");
  await check("report");
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
}
await browser.close();
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
