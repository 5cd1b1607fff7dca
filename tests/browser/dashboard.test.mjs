// The README's dashboard picture: the widgets of template.yaml's Dashboard, drawn in headless
// Chromium as small hand-written SVG charts from the metrics the real binaries emitted over
// fourteen weekly windows (target/metrics/weeks.json, written by `cargo test --test history`).
// Saves docs/dashboard.png. No AWS account, no chart library.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const root = new URL("../../", import.meta.url).pathname;
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const metricsFile = `${root}target/metrics/weeks.json`;

/** The DashboardBody block scalar of template.yaml, with every ${...} filled in. */
function dashboardBody() {
  const lines = readFileSync(`${root}template.yaml`, "utf8").split("\n");
  const at = lines.findIndex((l) => /^\s+DashboardBody: !Sub\s*$/.test(l));
  assert.ok(at >= 0, "template.yaml has no `DashboardBody: !Sub` block");
  const item = lines[at + 1].match(/^(\s*)- \|\s*$/);
  assert.ok(item, "DashboardBody's !Sub should start with a `- |` block");
  const indent = item[1].length;
  const block = [];
  for (const l of lines.slice(at + 2)) {
    if (l.trim() !== "" && l.search(/\S/) <= indent) break;
    block.push(l);
  }
  const text = block.join("\n").replace(/\$\{AWS::StackName\}/g, "ct-weeks-test").replace(/\$\{[^}]+\}/g, "x");
  return JSON.parse(text);
}

/** What a widget's metrics row asks for: namespace, metric name, dimension names, stat, label. */
function readRow(row, widgetStat) {
  const first = row[0];
  if (first && typeof first === "object" && first.expression) {
    const m = first.expression.match(/SEARCH\('\{([^}]*)\}\s*MetricName="([^"]+)"[^']*',\s*'(\w+)'/);
    assert.ok(m, `unreadable SEARCH: ${first.expression}`);
    const [namespace, ...dimensions] = m[1].split(",").map((s) => s.trim());
    return { namespace, name: m[2], dimensions, stat: m[3], search: true };
  }
  const strings = row.filter((c) => typeof c === "string");
  const options = row.find((c) => c && typeof c === "object") || {};
  const dimensions = strings.slice(2).filter((_, i) => i % 2 === 0);
  return { namespace: strings[0], name: strings[1], dimensions, stat: options.stat || widgetStat, label: options.label };
}

/** Each widget's series: label, points [week, value], dashed for thresholds. A sum over a
 * week without events is 0, so Sum series get a point every week. */
function seriesOf(widgets, rows, weeks) {
  return widgets.map((w) => {
    const p = w.properties;
    const series = [];
    const external = [];
    for (const row of p.metrics) {
      const want = readRow(row, p.stat);
      if (want.namespace !== "ct-trigger") {
        external.push(`${want.namespace} ${want.name}`);
        continue;
      }
      const matching = rows.filter(
        (r) => r.name === want.name && r.dimensions.length === want.dimensions.length
          && r.dimensions.every(([k], i) => k === want.dimensions[i]),
      );
      // A SEARCH draws one series per value of its extra dimension; a plain row, one series.
      const groups = new Map();
      for (const r of matching) {
        const key = r.dimensions.slice(1).map(([, v]) => v).join(" ");
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(r);
      }
      for (const [key, rs] of groups) {
        const byWeek = new Map();
        if (want.stat === "Sum") for (let wk = 0; wk < weeks; wk++) byWeek.set(wk, 0);
        for (const r of rs) {
          const prev = byWeek.get(r.week);
          byWeek.set(r.week, prev === undefined ? r.value : want.stat === "Sum" ? prev + r.value : Math.max(prev, r.value));
        }
        const label = want.search ? `${key} ${want.name}` : want.label || want.name;
        series.push({
          label,
          dashed: want.name === "Threshold",
          right: row.some((c) => c && c.yAxis === "right"),
          points: [...byWeek].sort((a, b) => a[0] - b[0]),
        });
      }
    }
    return { title: p.title, width: w.width, series, external };
  });
}

/** Runs in the page: draws every chart as an SVG. */
function draw({ charts, weeks, firstWeek }) {
  const colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const ns = "http://www.w3.org/2000/svg";
  const el = (name, attrs, parent) => {
    const e = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    parent.appendChild(e);
    return e;
  };
  const grid = document.getElementById("grid");
  for (const chart of charts) {
    const card = document.createElement("section");
    card.className = "card";
    card.style.gridColumn = `span ${chart.width}`;
    card.dataset.title = chart.title;
    card.innerHTML = `<h2></h2>`;
    card.querySelector("h2").textContent = chart.title;
    grid.appendChild(card);
    const W = chart.width * 46, H = 190, L = 44, R = chart.series.some((s) => s.right) ? 44 : 10, T = 8, B = 22;
    const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` }, card);
    const left = chart.series.filter((s) => !s.right), right = chart.series.filter((s) => s.right);
    const top = (ss) => Math.max(1, ...ss.flatMap((s) => s.points.map((p) => p[1]))) * 1.1;
    const [maxL, maxR] = [top(left), top(right)];
    const x = (week) => L + ((W - L - R) * week) / Math.max(1, weeks - 1);
    const y = (v, r) => T + (H - T - B) * (1 - v / (r ? maxR : maxL));
    el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" }, svg);
    el("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" }, svg);
    for (const [v, r] of [[maxL, false], [maxL / 2, false], ...(right.length ? [[maxR, true], [maxR / 2, true]] : [])]) {
      const t = el("text", { x: r ? W - R + 4 : L - 4, y: y(v, r) + 4, "text-anchor": r ? "start" : "end", class: "tick" }, svg);
      t.textContent = v >= 100 ? Math.round(v) : v.toFixed(v >= 10 ? 0 : 2);
    }
    for (let week = 0; week < weeks; week += 2) {
      const t = el("text", { x: x(week), y: H - 6, "text-anchor": "middle", class: "tick" }, svg);
      const d = new Date((firstWeek + week * 7 * 86400) * 1000);
      t.textContent = `${d.getUTCMonth() + 1}/${d.getUTCDate()}`;
    }
    const legend = document.createElement("ul");
    chart.series.forEach((s, i) => {
      const c = colours[i % colours.length];
      const total = s.points.reduce((a, p) => a + p[1], 0);
      const g = el("g", { class: "series", "data-label": s.label, "data-total": total }, svg);
      el("polyline", {
        points: s.points.map(([w, v]) => `${x(w)},${y(v, s.right)}`).join(" "),
        fill: "none", stroke: c, "stroke-width": 2, ...(s.dashed ? { "stroke-dasharray": "5 4" } : {}),
      }, g);
      for (const [w, v] of s.points) el("circle", { cx: x(w), cy: y(v, s.right), r: 2.5, fill: c }, g);
      const li = document.createElement("li");
      li.innerHTML = `<i style="background:${c}"></i>`;
      li.append(s.label + (s.right ? " (right)" : ""));
      legend.appendChild(li);
    });
    card.dataset.external = chart.external.length;
    for (const e of new Set(chart.external)) {
      const li = document.createElement("li");
      li.className = "external";
      li.textContent = e;
      legend.appendChild(li);
    }
    if (!chart.series.length) {
      const t = el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "none" }, svg);
      t.textContent = "AWS's own metrics: no data in a local run";
    }
    card.appendChild(legend);
  }
}

const page = `<!doctype html><meta charset="utf-8"><style>
  body { font: 12px system-ui, sans-serif; margin: 12px; background: #f4f5f7; color: #222; }
  h1 { font-size: 15px; margin: 0 0 8px; }
  #grid { display: grid; grid-template-columns: repeat(24, 46px); gap: 8px 0; }
  .card { background: #fff; border: 1px solid #dde; border-radius: 4px; padding: 6px; margin-right: 8px; }
  h2 { font-size: 12px; margin: 0 0 4px; }
  ul { list-style: none; padding: 0; margin: 4px 0 0; display: flex; flex-wrap: wrap; gap: 2px 10px; }
  li i { display: inline-block; width: 10px; height: 3px; margin-right: 4px; vertical-align: middle; }
  li.external { color: #888; }
  .tick { font-size: 10px; fill: #666; }
  .none { font-size: 12px; fill: #999; }
</style><h1>ct-trigger dashboard (template.yaml) — 14 weekly windows from a local run of the real binaries</h1><div id="grid"></div>`;

test("the dashboard's widgets drawn from the metrics a fourteen-week local run emitted", async () => {
  if (!existsSync(metricsFile)) {
    throw new Error(`${metricsFile} is missing: run \`cargo test -p ct-trigger-tests --test history\` first (scripts/test does)`);
  }
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: apt-get install -y chromium (scripts/test installs it when run as root)`);
  }
  const rows = JSON.parse(readFileSync(metricsFile, "utf8"));
  const weeks = new Set(rows.map((r) => r.week)).size;
  assert.equal(weeks, 14, "the history test records fourteen weeks");
  const body = dashboardBody();
  const charts = seriesOf(body.widgets, rows, weeks);
  const firstWeek = Math.min(...rows.map((r) => r.time));

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  try {
    const tab = await browser.newPage({ viewport: { width: 1140, height: 800 } });
    await tab.setContent(page);
    await tab.evaluate(draw, { charts, weeks, firstWeek });
    const drawn = await tab.$$eval("section.card", (cards) => cards.map((c) => ({
      title: c.dataset.title,
      series: [...c.querySelectorAll("g.series")].map((g) => ({
        label: g.dataset.label, points: g.querySelectorAll("circle").length, total: Number(g.dataset.total),
      })),
      external: Number(c.dataset.external),
    })));
    const chart = (start) => {
      const c = drawn.find((d) => d.title.startsWith(start));
      assert.ok(c, `no widget titled ${start}… among ${drawn.map((d) => d.title).join(" | ")}`);
      return c;
    };
    const labels = (c) => c.series.map((s) => s.label).sort();

    // Objects and new objects: each dataset and its threshold, one point a week
    for (const title of ["Objects per dataset", "New objects since training"]) {
      const c = chart(title);
      const metric = title.startsWith("Objects") ? "Objects" : "NewObjects";
      assert.deepEqual(labels(c), [`embedding ${metric}`, "embedding Threshold", `text ${metric}`, "text Threshold"].sort(), title);
      for (const s of c.series) assert.equal(s.points, 14, `${title}: ${s.label}`);
    }
    // Decisions: five approvals and two declines over the weeks, eight asks
    const decisions = chart("Decisions and asks");
    assert.deepEqual(labels(decisions), ["asked", "nope Decisions", "train Decisions"]);
    const total = (c, label) => c.series.find((s) => s.label === label).total;
    for (const s of decisions.series) assert.equal(s.points, 14, s.label);
    assert.equal(total(decisions, "train Decisions"), 5);
    assert.equal(total(decisions, "nope Decisions"), 2);
    assert.equal(total(decisions, "asked"), 8);
    // Counting: time and list requests, every week
    const counting = chart("Counting time and list requests");
    assert.deepEqual(labels(counting), ["list requests", "seconds"]);
    for (const s of counting.series) assert.equal(s.points, 14, s.label);
    // Refused: three forged signatures, three late clicks, the superseded click
    const refused = chart("Refused requests");
    assert.deepEqual(labels(refused), ["already_decided Refused", "signature Refused", "superseded Refused"]);
    assert.equal(total(refused, "signature Refused"), 3);
    assert.equal(total(refused, "already_decided Refused"), 3);
    assert.equal(total(refused, "superseded Refused"), 1);
    // AWS's own metrics are named, not invented
    assert.equal(chart("Errors and throttles").external, 6);
    assert.equal(chart("Failed seeks").external, 1);

    await tab.screenshot({ path: `${root}docs/dashboard.png`, fullPage: true });
  } finally {
    await browser.close();
  }
});
