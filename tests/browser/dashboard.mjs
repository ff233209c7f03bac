// Drives Debian's Chromium through the stsward dashboard with playwright-core and prints
// what it saw as one JSON object on standard output (crates/stsward-server/tests/web_browser.rs
// starts the server, runs this script and asserts on that JSON).
//
// Input, from the environment:
//   STSWARD_URL            the dashboard's base URL (http://127.0.0.1:PORT)
//   STSWARD_USER           a tenant user's name; STSWARD_PASSWORD its password
//   STSWARD_DOMAIN         a domain of that user's tenant, with ingested reports
//   STSWARD_OTHER_DOMAIN   a domain of another tenant; STSWARD_OTHER_TENANT that tenant
//   STSWARD_ARTIFACTS      where the screenshots go
//   STSWARD_CHROMIUM       the browser (default /usr/bin/chromium)
//   STSWARD_SIGNAL_DIR     where this script asks the test to move the clock (file "move")
//                          and learns that it did (file "moved")
//
// Every wait has a deadline; the browser gets a fresh profile and flags that keep it off
// the network (this machine, like CI, reaches no other host).

import { chromium } from "playwright-core";
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

const base = env("STSWARD_URL");
const user = env("STSWARD_USER");
const password = env("STSWARD_PASSWORD");
const domain = env("STSWARD_DOMAIN");
const otherDomain = env("STSWARD_OTHER_DOMAIN");
const otherTenant = env("STSWARD_OTHER_TENANT");
const artifacts = env("STSWARD_ARTIFACTS");
const executablePath = env("STSWARD_CHROMIUM", "/usr/bin/chromium");
const signals = env("STSWARD_SIGNAL_DIR");
const WAIT_MS = 15000;

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const result = { steps: [], page_errors: [] };
const profile = mkdtempSync(join(tmpdir(), "stsward-chromium-"));
mkdirSync(artifacts, { recursive: true });
let context;

async function readiness(page) {
  return {
    verdict: (await page.textContent("#verdict"))?.trim(),
    passed: await page.$$eval("li.criterion.pass", (items) => items.map((i) => i.dataset.code)),
  };
}

async function login(page) {
  await page.fill("#user", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${base}/`), page.click("#login")]);
}

async function shoot(page, name) {
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
    // Charts size themselves at draw time; the shot shows the page as laid out at that width.
    await page.waitForTimeout(100);
    const file = join(artifacts, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    (result.screenshots ??= []).push(file);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    timeout: WAIT_MS,
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(WAIT_MS);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => result.page_errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") result.page_errors.push(m.text());
  });

  // 1. Log in (the overview first redirects to the login form).
  await page.goto(`${base}/`);
  result.before_login_url = new URL(page.url()).pathname;
  await login(page);
  result.steps.push("login");

  // 2. The overview.
  result.overview = {
    domains: await page.$$eval("tr.domain-row", (rows) => rows.map((r) => r.dataset.domain)),
    who: (await page.textContent("#who"))?.trim(),
  };
  await shoot(page, "overview");
  // The page follows the system's colour scheme.
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: "light" });
  result.overview.light = await background();
  await page.emulateMedia({ colorScheme: "dark" });
  result.overview.dark = await background();
  await page.screenshot({ path: join(artifacts, "overview-dark-1280.png") });
  await page.emulateMedia({ colorScheme: "light" });
  result.steps.push("overview");

  // 2b. Add a domain from the overview; its page lists the records to publish.
  await page.fill("#add-name", `new-${domain}`);
  await page.fill("#add-mx", `mx1.new-${domain}`);
  await Promise.all([page.waitForURL(`${base}/domains/new-${domain}`), page.click("#add-submit")]);
  result.added = {
    name: (await page.textContent("#domain-name"))?.trim(),
    records: await page.$$eval("tr.record-row", (rows) =>
      rows.map((r) => ({ name: r.cells[0].textContent.trim(), status: r.dataset.status })),
    ),
  };
  await page.goto(`${base}/`);
  result.added.overview = await page.$$eval("tr.domain-row", (rows) => rows.map((r) => r.dataset.domain));
  result.steps.push("add-domain");

  // 3. A domain and its records.
  await Promise.all([
    page.waitForURL(`${base}/domains/${domain}`),
    page.click(`tr.domain-row[data-domain="${domain}"] a`),
  ]);
  await page.waitForSelector("#records");
  result.domain = {
    name: (await page.textContent("#domain-name"))?.trim(),
    mode: (await page.textContent("#mode"))?.trim(),
    records: await page.$$eval("tr.record-row", (rows) =>
      rows.map((r) => ({ name: r.cells[0].textContent.trim(), status: r.dataset.status })),
    ),
    verdict: (await page.textContent("#verdict"))?.trim(),
    criteria: await page.$$eval("li.criterion", (items) => items.map((i) => i.dataset.code)),
    reports: await page.$$eval("#domain-reports tr.report-row", (rows) => rows.length),
    policies: await page.$$eval("#policies-table tr.policy-row", (rows) => rows.length),
    failures: await page.$$eval("#failures-table tr.failure-row", (rows) =>
      rows.map((r) => Array.from(r.cells).map((c) => c.textContent.trim())),
    ),
  };
  await page.fill('input[data-table="failures-table"]', "microsoft");
  result.domain.filtered_failures = await page.$$eval(
    "#failures-table tr.failure-row",
    (rows) => rows.filter((r) => !r.hidden).length,
  );
  result.steps.push("domain");

  // 4. The charts: the JSON the page carries, and the data uPlot drew.
  await page.waitForFunction(() => window.stswardCharts && window.stswardCharts.sessions);
  result.charts = await page.evaluate(() => {
    const json = JSON.parse(document.getElementById("chart-data").textContent);
    const drawn = {};
    for (const [name, chart] of Object.entries(window.stswardCharts || {})) {
      drawn[name] = chart.data.map((series) => Array.from(series));
    }
    return { json, drawn, canvases: document.querySelectorAll(".chart canvas").length };
  });
  await shoot(page, "domain");
  result.steps.push("charts");

  // 4b. The readiness verdict as the test moves the clock 31 days and adds fresh reports,
  // a good check and policy fetches. The session idles out meanwhile: log in again.
  result.readiness_before = await readiness(page);
  writeFileSync(join(signals, "move"), "");
  for (let waited = 0; !existsSync(join(signals, "moved")); waited += 100) {
    if (waited > WAIT_MS) throw new Error("the test did not move the clock");
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.goto(`${base}/domains/${domain}`);
  result.readiness_relogin = new URL(page.url()).pathname;
  await login(page);
  await page.goto(`${base}/domains/${domain}`);
  result.readiness_after = await readiness(page);
  result.steps.push("readiness");

  // 5. A report's raw view.
  await Promise.all([page.waitForURL(/\/reports\/\d+\/raw/), page.click("a.raw-link >> nth=0")]);
  await page.waitForSelector("#raw, #raw-binary");
  const raw = await page.$("#raw");
  result.raw = {
    report_id: (await page.textContent("#raw-report-id"))?.trim(),
    text: raw ? (await raw.textContent()) : null,
  };
  result.steps.push("raw");

  // 5c. The corpus's reports: the charts of their domain over their years.
  const corpusPage = env("STSWARD_CORPUS_PAGE", "");
  if (corpusPage) {
    await page.goto(base + corpusPage);
    await page.waitForFunction(() => window.stswardCharts && window.stswardCharts.sessions);
    result.corpus = await page.evaluate(() => {
      const json = JSON.parse(document.getElementById("chart-data").textContent);
      const sum = (a) => a.reduce((t, v) => t + v, 0);
      const drawn = window.stswardCharts.sessions.data;
      return {
        window: document.getElementById("chart-window").textContent.trim(),
        successful: sum(json.sessions.successful),
        failed: sum(json.sessions.failed),
        points: json.sessions.x.length,
        drawn_points: drawn[0].length,
      };
    });
    if (result.corpus.drawn_points !== result.corpus.points) {
      throw new Error(`uPlot drew ${result.corpus.drawn_points} of ${result.corpus.points} days`);
    }
    result.steps.push("corpus");
  }

  // 5b. The policy editor: an invalid edit shows its error as it is typed; a valid one shows
  // the id it would publish, and saving publishes a new version.
  await page.goto(`${base}/domains/${domain}/policy`);
  result.editor = { before_id: null };
  await page.fill("#policy-text", "version: STSv1\nmode: enforce\nmax_age: 86400\n");
  await page.waitForSelector("#lint-invalid");
  result.editor.invalid_codes = await page.$$eval("li.finding.sev-error", (items) =>
    items.map((i) => i.dataset.code),
  );
  await page.fill(
    "#policy-text",
    `version: STSv1\nmode: enforce\nmx: mx1.${domain}\nmax_age: 86400\n`,
  );
  await page.waitForFunction(() => {
    const line = document.getElementById("new-id-line");
    return line && line.textContent.includes("new version");
  });
  result.editor.preview_id = (await page.textContent("#new-id"))?.trim();
  result.editor.served_preview = await page.textContent("#served-preview");
  await Promise.all([page.waitForURL(`${base}/domains/${domain}`), page.click("#save")]);
  result.editor.saved_id = (await page.textContent("#policy-id"))?.trim();
  result.editor.saved_mode = (await page.textContent("#mode"))?.trim();
  await page.goto(`${base}/domains/${domain}/policy`);
  result.editor.history = await page.$$eval("details.version", (items) =>
    items.map((d) => ({
      summary: d.querySelector("summary").textContent.trim(),
      added: Array.from(d.querySelectorAll(".d.add")).map((l) => l.textContent.trim()),
      removed: Array.from(d.querySelectorAll(".d.del")).map((l) => l.textContent.trim()),
    })),
  );
  result.steps.push("editor");

  // 6. Another tenant's domain, by page: refused. Its 404 is logged by the browser as a
  // failed resource, so the errors of the pages that should have none are kept apart.
  result.errors_before_refusal = result.page_errors.slice();
  result.cross_tenant = [];
  for (const path of [`/domains/${otherDomain}`, `/domains/${otherDomain}?tenant=${otherTenant}`]) {
    const response = await page.goto(`${base}${path}`);
    result.cross_tenant.push({
      path,
      status: response ? response.status() : null,
      shows: (await page.textContent("#error-code").catch(() => null))?.trim() ?? null,
      leaked: (await page.content()).includes("chart-data"),
    });
  }
  // ... and by API: the session does not open the API (it takes bearer tokens), and the
  // tenant user's own token reaches its domain but not the other tenant's.
  const apiToken = env("STSWARD_API_TOKEN");
  const api = async (path, headers) => (await page.request.get(`${base}${path}`, { headers })).status();
  const bearer = { Authorization: `Bearer ${apiToken}` };
  result.cross_tenant_api = {
    with_session: await api(`/api/v1/domains/${otherDomain}`, {}),
    own_domain: await api(`/api/v1/domains/${domain}`, bearer),
    other_domain: await api(`/api/v1/domains/${otherDomain}`, bearer),
  };
  result.steps.push("cross-tenant");

  // 7. Log out; the pages then redirect to the login.
  await page.goto(`${base}/`);
  await Promise.all([page.waitForURL(`${base}/login`), page.click("#logout")]);
  result.after_logout = [];
  for (const path of ["/", `/domains/${domain}`, "/reports"]) {
    await page.goto(`${base}${path}`);
    result.after_logout.push({ path, landed: new URL(page.url()).pathname });
  }
  result.steps.push("logout");
  result.ok = true;
} catch (e) {
  result.ok = false;
  result.error = String(e && e.stack ? e.stack : e);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(result.ok ? 0 : 1);
