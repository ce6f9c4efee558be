/**
 * The dashboard page: one self-contained HTML document (inline style, script and
 * SVG; nothing is fetched from elsewhere, there is no build step).
 *
 * Layout, a CSS grid for one screen (about 1280×800 and up; it stacks on narrow
 * windows): a header with the connection status and the invariant badge; a row of
 * panels (totals per branch, the frontier and each collection's logical upper,
 * physical upper and since, the txns shard and its unapplied transactions); a row of
 * two charts over the last 60 s (commits/s, commit → view lag); and the balances of
 * every account as a heatmap, one block per branch.
 *
 * It listens to `/events`: the `snapshot` event replaces its state, each `delta`
 * is merged in (the same rules as protocol.ts `applyDelta`) and only the changed
 * cells are touched.
 *
 * Elements a test (or a curious reader) can rely on: `#status` (`data-state`
 * "connecting", "live", "down"), `#invariant` (`data-ok="true|false"`), `#frontier`,
 * `#total`, `#expected-total`, `#commits`, `#commits-per-sec`, `#lag-p50`,
 * `#lag-p99`, `#unapplied`, `#events` (frames received), `#snapshot-bytes`,
 * `#last-delta-bytes`, cells `[data-account]` with `data-balance`, rows
 * `[data-branch]` with `data-branch-total`, rows `tr[data-collection]` with
 * `data-logical-upper`, `data-physical-upper`, `data-since`, and the charts
 * `#rate-chart` and `#lag-chart` (each has `data-points`). `document.title` ends in
 * "live" while connected.
 */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>txnwal bank dashboard</title>
<style>
  :root { --bg: #f3f4f6; --panel: #fff; --ink: #1f2328; --muted: #656d76; --ok: #1a7f37; --bad: #cf222e; --line: #d0d7de; --accent: #0969da; }
  * { box-sizing: border-box; }
  body { font: 13px/1.35 system-ui, sans-serif; margin: 0; background: var(--bg); color: var(--ink); }
  header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1rem; background: #24292f; color: #fff; }
  header h1 { font-size: 1.1rem; margin: 0; font-weight: 600; }
  #status { font-size: .85rem; padding: .1rem .5rem; border-radius: .5rem; background: #57606a; }
  #status[data-state="live"] { background: var(--ok); }
  #status[data-state="down"] { background: var(--bad); }
  #invariant { margin-left: auto; font-weight: 700; font-size: 1.05rem; padding: .25rem .9rem; border-radius: .4rem; background: #57606a; }
  #invariant[data-ok="true"] { background: var(--ok); }
  #invariant[data-ok="false"] { background: var(--bad); animation: blink 1s steps(2) infinite; }
  @keyframes blink { 50% { background: #82071e; } }
  main { display: grid; gap: .7rem; padding: .7rem; grid-template-columns: repeat(4, minmax(0, 1fr));
    grid-template-areas: "totals frontier frontier unapplied" "rate rate lag lag" "balances balances balances balances"; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; grid-template-areas: "totals" "frontier" "unapplied" "rate" "lag" "balances"; } }
  .panel { background: var(--panel); border: 1px solid var(--line); border-radius: .5rem; padding: .6rem .8rem; min-width: 0; }
  .panel h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 .4rem; font-weight: 600; }
  .big { font-size: 1.6rem; font-weight: 650; font-variant-numeric: tabular-nums; }
  .num { font-variant-numeric: tabular-nums; }
  .muted { color: var(--muted); }
  #p-totals { grid-area: totals; } #p-frontier { grid-area: frontier; } #p-unapplied { grid-area: unapplied; }
  #p-rate { grid-area: rate; } #p-lag { grid-area: lag; } #p-balances { grid-area: balances; }
  #total.bad { color: var(--bad); }
  table { border-collapse: collapse; width: 100%; }
  th, td { padding: .1rem .4rem; text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  th { font-weight: 600; color: var(--muted); font-size: .75rem; }
  th:first-child, td:first-child { text-align: left; }
  tbody tr:nth-child(even) td { background: #f6f8fa; }
  .bar { height: .45rem; background: var(--accent); border-radius: .2rem; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: .15rem .8rem; margin: 0; }
  dt { color: var(--muted); } dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
  .chart-head { display: flex; align-items: baseline; gap: .8rem; }
  .chart-head .big { font-size: 1.3rem; }
  svg.chart { display: block; width: 100%; height: 140px; margin-top: .2rem; }
  svg.chart text { font-size: 10px; fill: var(--muted); }
  .legend { font-size: .75rem; color: var(--muted); margin-top: .2rem; }
  .key { display: inline-block; width: .9rem; height: .2rem; vertical-align: middle; margin-right: .2rem; }
  #heatmap { display: grid; grid-template-columns: repeat(var(--branches, 4), minmax(0, 1fr)); gap: .8rem; }
  .branch h3 { font-size: .8rem; margin: 0 0 .25rem; font-weight: 600; display: flex; justify-content: space-between; }
  .cells { display: grid; grid-template-columns: repeat(var(--cols, 5), minmax(0, 1fr)); gap: 2px; }
  .cell { font-size: .7rem; text-align: center; padding: .3rem 0; border-radius: 2px; font-variant-numeric: tabular-nums; outline: 2px solid transparent; transition: outline-color .8s; }
  .cell.changed { outline-color: #1f2328; transition: none; }
</style>
</head>
<body>
<header>
  <h1>txnwal bank</h1>
  <span id="status" data-state="connecting">connecting…</span>
  <span class="muted" style="color:#afb8c1">frames <span id="events" class="num">0</span> · snapshot <span id="snapshot-bytes" class="num">–</span> B · last delta <span id="last-delta-bytes" class="num">–</span> B</span>
  <span id="invariant" data-ok="unknown">invariant ?</span>
</header>
<main>
  <section class="panel" id="p-totals">
    <h2>Totals</h2>
    <div><span class="big" id="total">–</span> <span class="muted">of <span id="expected-total" class="num">–</span> deposited</span></div>
    <div class="muted" id="invariant-detail">total == deposited and no balance below 0, checked at every frontier</div>
    <table id="branches"><thead><tr><th>branch</th><th>total</th><th style="width:40%"></th></tr></thead><tbody></tbody></table>
    <div class="muted" style="margin-top:.3rem">commits by this dashboard <span id="commits" class="num">–</span></div>
  </section>
  <section class="panel" id="p-frontier">
    <h2>Frontier</h2>
    <div><span class="big" id="frontier">–</span> <span class="muted" id="frontier-age"></span></div>
    <table id="collections"><thead><tr><th>collection</th><th title="the progress this dashboard's subscription reported: every time below is complete">logical upper</th><th title="the data shard's own upper: txn-wal moves the logical one without writing the shard">physical upper</th><th title="reads as of earlier times are no longer exact">since</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="panel" id="p-unapplied">
    <h2>Transactions</h2>
    <dl>
      <dt>unapplied</dt><dd><span class="big" id="unapplied">–</span></dd>
      <dt>oldest unapplied</dt><dd id="unapplied-oldest">–</dd>
      <dt>unapplied bytes</dt><dd id="unapplied-bytes">–</dd>
      <dt>applied, awaiting tidy</dt><dd id="awaiting-tidy">–</dd>
      <dt>txns upper</dt><dd id="txns-upper">–</dd>
      <dt>txns since</dt><dd id="txns-since">–</dd>
    </dl>
    <div class="legend">Unapplied: committed to the txns shard, not yet written to its data shard (the physical upper is not past it). Readers already see it: they read it from the txns shard.</div>
  </section>
  <section class="panel" id="p-rate">
    <div class="chart-head"><h2>Commits / s</h2><span class="big" id="commits-per-sec">–</span><span class="muted">txns seen / s <span id="txns-seen-per-sec" class="num">–</span></span></div>
    <svg class="chart" id="rate-chart" data-points="0"></svg>
    <div class="legend"><span class="key" style="background:#0969da"></span>writes this dashboard committed, per second (acknowledged by <code>db.write</code>) · <span class="key" style="background:#8250df"></span>distinct commit timestamps the view delivered (any writer; writes that met in one group commit count once) · last 60 s</div>
  </section>
  <section class="panel" id="p-lag">
    <div class="chart-head"><h2>Commit → view lag</h2><span class="big"><span id="lag-p50">–</span> ms</span><span class="muted">p99 <span id="lag-p99" class="num">–</span> ms</span></div>
    <svg class="chart" id="lag-chart" data-points="0"></svg>
    <div class="legend"><span class="key" style="background:#bf3989"></span>median · <span class="key" style="background:#f4b6d2"></span>p99, per second. Lag: ms from a transfer's acknowledgement (<code>db.write</code> resolved with its commit timestamp) to the moment this dashboard's <code>db.subscribe$</code> pipeline delivered a closed frontier past that timestamp. Below 0: the view had it before the writer saw its ack.</div>
  </section>
  <section class="panel" id="p-balances">
    <h2>Balances <span class="muted" style="text-transform:none;letter-spacing:0">— blue below the opening balance, orange above; a dark outline marks a change</span></h2>
    <div id="heatmap"></div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const WINDOW = 60;
let state = null;
let frames = 0;
const cells = new Map();
const branchRows = [];
const collectionRows = new Map();

function applyDelta(s, d) {
  const out = Object.assign({}, s, d);
  if (d.balances) out.balances = Object.assign({}, s.balances, d.balances);
  if (d.collections) {
    const byName = new Map(s.collections.map((c) => [c.name, c]));
    for (const c of d.collections) byName.set(c.name, Object.assign({}, byName.get(c.name), c));
    out.collections = [...byName.values()];
  }
  if (d.samples) out.samples = s.samples.concat(d.samples).slice(-WINDOW);
  return out;
}

const fmt = (n) => (n === null || n === undefined || n < 0 ? "–" : Number(n).toLocaleString("en-US"));
const text = (id, value) => { const el = $(id); const t = String(value); if (el.textContent !== t) el.textContent = t; };

// The heatmap and tables are built once per snapshot; deltas only touch changed cells.
function build(s) {
  const heatmap = $("heatmap");
  heatmap.textContent = "";
  heatmap.style.setProperty("--branches", String(s.branches.length));
  cells.clear();
  branchRows.length = 0;
  const branchBody = $("branches").tBodies[0];
  branchBody.textContent = "";
  s.branches.forEach((branch, b) => {
    const block = document.createElement("div");
    block.className = "branch";
    block.innerHTML = "<h3><span></span><span class=num></span></h3><div class=cells></div>";
    block.querySelector("h3 span").textContent = branch.name;
    const grid = block.querySelector(".cells");
    grid.style.setProperty("--cols", String(Math.ceil(Math.sqrt(branch.accounts.length))));
    for (const account of branch.accounts) {
      const cell = document.createElement("div");
      cell.className = "cell";
      cell.dataset.account = account;
      grid.appendChild(cell);
      cells.set(account, cell);
    }
    heatmap.appendChild(block);
    const row = document.createElement("tr");
    row.dataset.branch = String(b);
    row.innerHTML = "<td></td><td></td><td><div class=bar></div></td>";
    row.cells[0].textContent = branch.name;
    branchBody.appendChild(row);
    branchRows.push({ row, block });
  });
  $("collections").tBodies[0].textContent = "";
  collectionRows.clear();
}

function cellColour(balance, average) {
  const d = Math.max(-1, Math.min(1, balance / average - 1));
  const hue = d < 0 ? 212 : 28;
  return "hsl(" + hue + ", 75%, " + (95 - 50 * Math.abs(d)).toFixed(1) + "%)";
}

function renderBalances(s, changed) {
  const average = s.expectedTotal / Math.max(1, cells.size);
  for (const account of changed) {
    const cell = cells.get(account);
    if (!cell) continue;
    const balance = s.balances[account];
    cell.dataset.balance = String(balance);
    cell.textContent = String(balance);
    cell.title = account + ": " + balance;
    cell.style.background = cellColour(balance, average);
    cell.style.color = Math.abs(balance / average - 1) > 0.6 ? "#fff" : "#1f2328";
    if (state && frames > 1) {
      cell.classList.add("changed");
      requestAnimationFrame(() => requestAnimationFrame(() => cell.classList.remove("changed")));
    }
  }
}

function renderCollections(s) {
  const body = $("collections").tBodies[0];
  for (const c of s.collections) {
    let row = collectionRows.get(c.name);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.collection = c.name;
      row.innerHTML = "<td></td><td></td><td></td><td></td>";
      row.cells[0].textContent = c.name;
      row.cells[0].title = c.shardId;
      body.appendChild(row);
      collectionRows.set(c.name, row);
    }
    row.dataset.logicalUpper = String(c.logicalUpper);
    row.dataset.physicalUpper = String(c.physicalUpper);
    row.dataset.since = String(c.since);
    row.cells[1].textContent = fmt(c.logicalUpper);
    row.cells[2].textContent = fmt(c.physicalUpper);
    row.cells[3].textContent = fmt(c.since);
  }
}

function render(s, d) {
  text("frontier", fmt(s.frontier));
  // Timestamps of the durable oracles are wall-clock milliseconds: show how far behind now.
  text("frontier-age", s.frontier > 1e12 ? "≈ " + Math.max(0, Date.now() - s.frontier).toLocaleString("en-US") + " ms behind now" : "");
  text("total", fmt(s.total));
  $("total").classList.toggle("bad", s.total !== s.expectedTotal);
  text("expected-total", fmt(s.expectedTotal));
  text("commits", s.transfers ? fmt(s.commits) : "none (watching only)");
  const badge = $("invariant");
  badge.dataset.ok = String(s.invariantOk);
  text("invariant", s.invariantOk ? "invariant OK" : "invariant VIOLATED (" + s.violations + " frontiers)");
  const maxBranch = Math.max(1, ...s.perBranch.map(Math.abs));
  s.perBranch.forEach((sum, b) => {
    const entry = branchRows[b];
    if (!entry) return;
    entry.row.dataset.branchTotal = String(sum);
    entry.row.cells[1].textContent = fmt(sum);
    entry.row.querySelector(".bar").style.width = (100 * Math.abs(sum) / maxBranch).toFixed(1) + "%";
    entry.block.querySelector("h3 .num").textContent = fmt(sum);
  });
  renderBalances(s, d ? Object.keys(d.balances || {}) : Object.keys(s.balances));
  if (!d || d.collections) renderCollections(s);
  if (!d || d.unapplied) {
    const u = s.unapplied;
    text("unapplied", u ? fmt(u.unapplied) : "–");
    text("unapplied-oldest", u && u.oldestUnappliedTs !== null ? fmt(u.oldestUnappliedTs) + (u.oldestUnappliedTs > 1e12 ? " (" + Math.max(0, Date.now() - u.oldestUnappliedTs) + " ms ago)" : "") : "none");
    text("unapplied-bytes", u ? fmt(u.unappliedBytes) : "–");
    text("awaiting-tidy", u ? fmt(u.awaitingTidy) : "–");
    text("txns-upper", u ? fmt(u.txnsUpper) : "–");
    text("txns-since", u ? fmt(u.txnsSince) : "–");
  }
  if (!d || d.samples) renderCharts(s.samples);
}

function renderCharts(samples) {
  const last = samples[samples.length - 1];
  text("commits-per-sec", last ? fmt(last.commitsPerSec) : "–");
  text("txns-seen-per-sec", last ? fmt(last.txnsSeenPerSec) : "–");
  const lastLag = [...samples].reverse().find((x) => x.lag);
  text("lag-p50", lastLag ? lastLag.lag.p50.toFixed(1) : "–");
  text("lag-p99", lastLag ? lastLag.lag.p99.toFixed(1) : "–");
  drawChart($("rate-chart"), samples, [
    { value: (x) => x.commitsPerSec, colour: "#0969da", fill: true },
    { value: (x) => x.txnsSeenPerSec, colour: "#8250df", dash: "4 3" },
  ], "");
  drawChart($("lag-chart"), samples, [
    { value: (x) => (x.lag ? x.lag.p99 : null), colour: "#f4b6d2" },
    { value: (x) => (x.lag ? x.lag.p50 : null), colour: "#bf3989", fill: true },
  ], " ms");
}

// One SVG line chart over the last WINDOW seconds, x by each sample's wall time.
function drawChart(svg, samples, series, unit) {
  const w = Math.max(200, svg.clientWidth || 600);
  const h = Math.max(80, svg.clientHeight || 140);
  const left = 58, right = 8, top = 8, bottom = 18;
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.textContent = "";
  svg.dataset.points = String(samples.length);
  const newest = samples.length ? samples[samples.length - 1].t : Date.now();
  const values = [];
  for (const s of series) for (const x of samples) { const v = s.value(x); if (v !== null) values.push(v); }
  let lo = Math.min(0, ...values);
  const hi = niceCeil(Math.max(1, ...values));
  const X = (t) => left + (w - left - right) * (1 - (newest - t) / 1000 / WINDOW);
  const Y = (v) => top + (h - top - bottom) * (1 - (v - lo) / (hi - lo));
  const add = (name, attrs, content) => {
    const el = document.createElementNS(SVG, name);
    for (const k in attrs) el.setAttribute(k, String(attrs[k]));
    if (content !== undefined) el.textContent = content;
    svg.appendChild(el);
    return el;
  };
  lo = lo < 0 ? -niceCeil(-lo) : 0;
  // A small negative range gets no label of its own: it would overlap the 0 label.
  for (const v of lo < 0 && Y(lo) - Y(0) >= 14 ? [lo, 0, hi / 2, hi] : [0, hi / 2, hi]) {
    add("line", { x1: left, x2: w - right, y1: Y(v), y2: Y(v), stroke: "#d0d7de", "stroke-width": 1 });
    add("text", { x: left - 4, y: Y(v) + 3, "text-anchor": "end" }, formatTick(v) + unit);
  }
  add("text", { x: left, y: h - 4 }, WINDOW + " s ago");
  add("text", { x: w - right, y: h - 4, "text-anchor": "end" }, "now");
  for (const s of series) {
    const pts = samples.filter((x) => s.value(x) !== null && newest - x.t <= WINDOW * 1000).map((x) => [X(x.t), Y(s.value(x))]);
    if (pts.length === 0) continue;
    const line = pts.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" ");
    if (s.fill && pts.length > 1) {
      add("polygon", { points: pts[0][0].toFixed(1) + "," + Y(Math.max(lo, 0)) + " " + line + " " + pts[pts.length - 1][0].toFixed(1) + "," + Y(Math.max(lo, 0)), fill: s.colour, opacity: 0.15 });
    }
    add("polyline", { points: line, fill: "none", stroke: s.colour, "stroke-width": 2, "stroke-dasharray": s.dash || "none", "stroke-linejoin": "round" });
  }
}
function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
function formatTick(v) {
  return Math.abs(v) >= 1000 ? (v / 1000).toFixed(1) + "k" : String(Math.round(v * 10) / 10);
}

function setStatus(kind, label) {
  const status = $("status");
  status.dataset.state = kind;
  status.textContent = label;
  document.title = "txnwal bank · " + label;
}

const events = new EventSource("/events");
events.addEventListener("snapshot", (message) => {
  frames++;
  state = JSON.parse(message.data);
  text("snapshot-bytes", message.data.length.toLocaleString("en-US"));
  build(state);
  render(state, null);
  text("events", frames);
  setStatus("live", "live");
});
events.addEventListener("delta", (message) => {
  if (!state) return;
  frames++;
  const delta = JSON.parse(message.data);
  text("last-delta-bytes", message.data.length.toLocaleString("en-US"));
  state = applyDelta(state, delta);
  render(state, delta);
  text("events", frames);
});
events.addEventListener("failure", (message) => setStatus("down", "failed: " + JSON.parse(message.data).message));
// EventSource reconnects by itself (and gets a fresh snapshot); say so instead of showing stale numbers as live.
events.onerror = () => setStatus("down", events.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…");
// Charts scroll and the frontier age moves even when nothing else changes.
window.addEventListener("resize", () => state && renderCharts(state.samples));
</script>
</body>
</html>
`;
