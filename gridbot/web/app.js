// gridbot fleet dashboard: fetch /api/fleet every 2 s, one card per instance. Data reaches the
// page only through textContent (never innerHTML), so nothing in a figure can inject markup.
"use strict";

const REFRESH_MS = 2000;
const cards = new Map();

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function num(s) {
  return s === null || s === undefined ? null : Number(s);
}

// +12.40, four places under 1 so a young grid's cents show (as `gridbot list`)
function money(s) {
  const v = num(s);
  if (v === null || Number.isNaN(v)) return "–";
  const t = v.toFixed(Math.abs(v) >= 1 ? 2 : 4);
  return v >= 0 ? "+" + t : t;
}

function signClass(s) {
  const v = num(s);
  return v === null || v === 0 ? "" : v > 0 ? "pos" : "neg";
}

function setMoney(node, s, quote) {
  node.textContent = money(s) + (quote ? " " + quote : "");
  node.className = ((node.dataset.base || "") + " " + signClass(s)).trim();
}

function makeCard(name) {
  const c = { root: el("section", "card") };
  c.root.dataset.name = name;
  const h = el("h2");
  h.append(el("span", "name", name));
  c.mode = el("span", "badge");
  c.state = el("span", "state");
  h.append(c.mode, c.state);
  c.root.append(h);
  const dl = el("dl");
  const field = (label, key) => {
    dl.append(el("dt", null, label));
    const dd = el("dd", key);
    dd.dataset.base = key;
    dl.append(dd);
    c[key] = dd;
  };
  field("pnl", "pnl");
  field("price", "price");
  field("grid profit", "profit");
  field("orders", "orders");
  field("unrealised", "unreal");
  field("fills", "nfills");
  field("fees", "fees");
  field("base held", "base");
  c.root.append(dl);
  c.range = el("div", "range");
  c.marker = el("div", "marker");
  c.range.append(c.marker);
  c.labels = el("div", "rangelabels");
  c.lower = el("span");
  c.upper = el("span");
  c.labels.append(c.lower, c.upper);
  c.root.append(c.range, c.labels);
  c.chart = el("div", "chart");
  c.root.append(c.chart);
  c.fills = el("table", "fills");
  c.note = el("div", "note");
  c.root.append(c.fills, c.note);
  c.plot = null;
  c.levelsKey = "";
  return c;
}

function drawLevels(c, inst, lo, hi) {
  const key = JSON.stringify(inst.orders) + lo + hi;
  if (key === c.levelsKey) return;
  c.levelsKey = key;
  for (const old of c.range.querySelectorAll(".lvl")) old.remove();
  const side = new Map(inst.orders.map((o) => [Number(o[1]), o[0]]));
  for (const line of inst.lines) {
    const p = Number(line);
    const d = el("div", "lvl" + (side.has(p) ? " " + side.get(p) : ""));
    d.style.left = ((p - lo) / (hi - lo)) * 100 + "%";
    c.range.append(d);
  }
}

function drawChart(c, inst) {
  const pts = inst.history || [];
  if (pts.length === 0) {
    if (c.plot) { c.plot.destroy(); c.plot = null; }
    if (!c.chart.querySelector(".empty")) c.chart.append(el("div", "empty", "equity history: a point a minute"));
    return;
  }
  const data = [pts.map((p) => p[0]), pts.map((p) => Number(p[2])), pts.map((p) => Number(p[3]))];
  if (!c.plot) {
    c.chart.replaceChildren();
    const width = Math.max(c.root.clientWidth - 30, 200);
    c.plot = new uPlot({
      width, height: 120, legend: { show: false }, cursor: { show: false },
      scales: { x: { time: true } },
      axes: [{ stroke: "#8b96a3", grid: { stroke: "#2d343d" } }, { stroke: "#8b96a3", grid: { stroke: "#2d343d" }, size: 55 }],
      series: [{}, { label: "pnl", stroke: "#58a6ff", width: 2 }, { label: "grid profit", stroke: "#3fb950", width: 1 }],
    }, data, c.chart);
  } else {
    c.plot.setData(data);
  }
}

function updateCard(c, inst) {
  const q = inst.quote || "";
  c.root.classList.toggle("bad", !!inst.bad);
  c.mode.textContent = inst.mode || "no figures";
  c.mode.className = "badge" + (inst.mode === "live" ? " live" : "");
  c.state.textContent = inst.state;
  setMoney(c.pnl, inst.total_pnl, q);
  setMoney(c.profit, inst.realised_profit, q);
  setMoney(c.unreal, inst.unrealised_pnl, q);
  c.fees.textContent = inst.fees_in_quote === null ? "–" : inst.fees_in_quote + " " + q;
  c.price.textContent = inst.price === null ? "–" : inst.price + " " + q;
  c.orders.textContent = inst.levels === null ? "–" :
    `${inst.orders_open}/${inst.levels} (${inst.orders_buy} buy, ${inst.orders_sell} sell)`;
  c.nfills.textContent = `${inst.fills === null ? "–" : inst.fills} (${inst.pairs === null ? "–" : inst.pairs} pairs)`;
  c.base.textContent = inst.base_held === null ? "–" : inst.base_held + " " + (inst.base || "");
  if (inst.lower !== null && inst.upper !== null) {
    const lo = Number(inst.lower), hi = Number(inst.upper);
    c.lower.textContent = inst.lower;
    c.upper.textContent = inst.upper;
    const p = num(inst.price);
    c.marker.style.display = p === null ? "none" : "";
    if (p !== null) c.marker.style.left = Math.min(Math.max((p - lo) / (hi - lo), 0), 1) * 100 + "%";
    drawLevels(c, inst, lo, hi);
    c.range.style.display = "";
  } else {
    c.range.style.display = "none";
    c.lower.textContent = c.upper.textContent = "";
  }
  const rows = (inst.recent_fills || []).map((f) => {
    const tr = el("tr");
    tr.append(el("td", null, new Date(f.time * 1000).toLocaleTimeString()), el("td", f.side === "buy" ? "pos" : "neg", f.side),
      el("td", null, f.qty), el("td", null, "@ " + f.price));
    return tr;
  });
  c.fills.replaceChildren(...rows);
  c.note.textContent = inst.note || "";
  drawChart(c, inst);
}

function render(doc) {
  const totals = document.getElementById("totals");
  totals.replaceChildren(...doc.totals.map((t) => {
    const d = el("div", "total");
    d.dataset.quote = t.quote;
    const b = el("b");
    setMoney(b, t.total_pnl, t.quote);
    d.append(el("span", null, `${t.quote} (${t.instances}) pnl `), b,
      el("span", null, ` grid ${money(t.realised_profit)} · ${t.orders_open} orders`));
    return d;
  }));
  const main = document.getElementById("cards");
  const seen = new Set();
  for (const inst of doc.instances) {
    seen.add(inst.name);
    let c = cards.get(inst.name);
    if (!c) {
      c = makeCard(inst.name);
      cards.set(inst.name, c);
      main.append(c.root);
    }
    updateCard(c, inst);
  }
  for (const [name, c] of cards) {
    if (!seen.has(name)) { if (c.plot) c.plot.destroy(); c.root.remove(); cards.delete(name); }
  }
  const status = document.getElementById("status");
  status.textContent = doc.error ? "error: " + doc.error : `${doc.instances.length} instances · ${new Date(doc.time * 1000).toLocaleTimeString()}`;
  status.className = doc.error ? "error" : "";
  document.body.dataset.instances = String(doc.instances.length);
  document.body.dataset.updated = String(doc.time);
}

async function refresh() {
  try {
    const r = await fetch("/api/fleet", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
  } catch (e) {
    const status = document.getElementById("status");
    status.textContent = "cannot reach gridbot web: " + e.message;
    status.className = "error";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
