// mot-router dashboard: plain JavaScript, no build step. Every value from the API is written with
// textContent (never innerHTML), so ids and reasons can never inject markup.
"use strict";

const KEY_STORE = "mot-router.key";
const REFRESH_MS = 2000;
const FEED_MAX = 60;
const SPARK_TTL_MS = 3000;
const DEADLETTER_PAGE = 20;
const AGENTS_PAGE = 50;
const FILTER_DEBOUNCE_MS = 250;
const CHARTS_MS = 10000;
const WINDOW_S = 3600;
const INTERVAL_S = 60;
const AGENTS_CHARTED = 15;
// control and format characters (bidi overrides and isolates, zero-width characters, line and paragraph
// separators, C0/C1 controls), except tab and newline: written as visible escapes, never applied, so a
// message cannot reorder or hide what the supervisor reads
const INVISIBLE = /(?![\t\n])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

const state = {
  key: sessionStorage.getItem(KEY_STORE) || "",
  scopes: [],
  lastFeedId: null,
  feedAbort: null,
  timer: null,
  sparks: new Map(), // contact id -> {at, intensities}
  editing: new Set(), // agent ids whose EQ input has focus or unsaved edits
  notes: new Map(), // agent id -> {text, cls}: the outcome of its last edit, kept across refreshes
  motCount: 0,
  deadPages: [null], // "before" cursors of the dead-letter pages browsed; the last is the one shown
  chartsTimer: null,
  // the agents table: filters, sort ("-" descending) and page; responses to an older query are dropped
  agentQuery: { q: "", status: "", eq: "", language: "", sort: "agent_id", offset: 0 },
  agentQueryVersion: 0,
  filterTimer: null,
};

const $ = (sel) => document.querySelector(sel);
const $$ = (sel) => [...document.querySelectorAll(sel)];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// text from the API as the supervisor should see it: invisible characters as \u escapes
function visible(text) {
  return String(text ?? "").replace(INVISIBLE, (c) => {
    const hex = c.codePointAt(0).toString(16).toUpperCase();
    return hex.length <= 4 ? `\\u${hex.padStart(4, "0")}` : `\\u{${hex}}`;
  });
}

// an id or a name of any length: cut with an ellipsis to fit, whole in its tooltip
function clipped(text, cls = "") {
  const t = visible(text);
  return el("span", { class: `clip ${cls}`.trim(), text: t, title: t });
}

function svgEl(tag, attrs = {}) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const h = { Authorization: `Bearer ${state.key}`, ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text }; }
  }
  if (res.status === 401) { logout("The key was refused. Enter it again."); }
  if (!res.ok) throw new ApiError(res.status, data);
  return { data, headers: res.headers };
}

function say(msg) { $("#status").textContent = msg; }
function can(scope) { return state.scopes.includes(scope); }
function fmtS(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${s.toFixed(0)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
function fmtTime(ts) { return new Date(ts * 1000).toLocaleTimeString(); }

// ---- login ------------------------------------------------------------------------------------------------
function logout(msg) {
  sessionStorage.removeItem(KEY_STORE);
  state.key = "";
  stopAll();
  $("#main").hidden = true;
  $("#forget").hidden = true;
  $("#whoami").textContent = "";
  $("#login").hidden = false;
  $("#login-error").textContent = msg || "";
  $("#key").focus();
}

async function start() {
  try {
    const { data } = await api("/v1/whoami");
    state.scopes = data.scopes;
    $("#whoami").textContent = `key ${data.name || data.key_id}${data.redacted ? " (no message text)" : ""}`;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) logout(`Cannot reach the API: ${e.message}`);
    return;
  }
  if (!can("routing:read") && !can("routing:read:redacted")) {
    logout("This key cannot read routing state (it needs routing:read or routing:read:redacted).");
    return;
  }
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#forget").hidden = false;
  await refresh();
  await refreshCharts();
  await loadDeadLetters();
  await loadFeed();
  state.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  state.chartsTimer = setInterval(() => { if (!document.hidden) refreshCharts(); }, CHARTS_MS);
}

function stopAll() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  if (state.chartsTimer) clearInterval(state.chartsTimer);
  state.chartsTimer = null;
  if (state.feedAbort) state.feedAbort.abort();
  state.feedAbort = null;
}

// ---- overview, queues, agents ----------------------------------------------------------------------------
async function refresh() {
  try {
    const [ov, qs] = await Promise.all([api("/v1/overview"), api("/v1/queues"), loadAgents()]);
    renderOverview(ov.data);
    renderQueues(qs.data.queues);
  } catch (e) {
    say(e instanceof ApiError && e.status === 503 ? "Store unreachable; retrying…" : `Refresh failed: ${e.message}`);
  }
}

// ---- agents table: filters, sort, pages (the server filters and pages: GET /v1/agents) -----------------
function agentsPath() {
  const f = state.agentQuery;
  const p = new URLSearchParams();
  if (f.q) p.set("q", f.q);
  if (f.status) p.set("status", f.status);
  if (f.eq) p.set("eq", f.eq);
  if (f.language) p.set("language", f.language);
  p.set("sort", f.sort);
  p.set("offset", String(f.offset));
  p.set("limit", String(AGENTS_PAGE));
  return `/v1/agents?${p}`;
}

async function loadAgents() {
  const version = state.agentQueryVersion;
  const { data } = await api(agentsPath());
  if (version !== state.agentQueryVersion) return; // the supervisor changed the query meanwhile
  if (!data.items.length && data.total > 0 && state.agentQuery.offset > 0) {
    // the page emptied (agents left, or a filter narrowed it): show the last page there is
    state.agentQuery.offset = Math.max(0, Math.floor((data.total - 1) / AGENTS_PAGE) * AGENTS_PAGE);
    state.agentQueryVersion += 1;
    await loadAgents();
    return;
  }
  renderAgentsPage(data);
}

function renderAgentsPage(page) {
  renderAgents(page.items);
  const first = page.offset + 1;
  const last = page.offset + page.items.length;
  $("#ag-range").textContent = page.total
    ? `${first}–${last} of ${page.total} agents`
    : "no agent matches";
  $("#ag-prev").disabled = page.offset <= 0;
  $("#ag-next").disabled = page.next_offset === null;
  const select = $("#f-lang");
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join(",") !== page.languages.join(",")) {
    const keep = select.value;
    select.replaceChildren(el("option", { value: "", text: "any" }), ...page.languages.map((l) => el("option", { value: l, text: l })));
    select.value = page.languages.includes(keep) ? keep : "";
  }
}

function agentsChanged({ keepPage = false } = {}) {
  if (!keepPage) state.agentQuery.offset = 0;
  state.agentQueryVersion += 1;
  loadAgents().catch((e) => say(`Agents failed: ${e.message}`));
}

function readFilters() {
  const f = state.agentQuery;
  f.q = $("#f-q").value.trim();
  f.status = $("#f-status").value;
  f.eq = $("#f-eq").value;
  f.language = $("#f-lang").value;
}

function sortBy(key) {
  const cur = state.agentQuery.sort;
  state.agentQuery.sort = cur === key ? `-${key}` : key;
  renderSortHeaders();
  agentsChanged();
}

function renderSortHeaders() {
  const cur = state.agentQuery.sort;
  for (const th of $$("#agents thead th[data-sort]")) {
    const key = th.dataset.sort;
    if (cur === key) th.setAttribute("aria-sort", "ascending");
    else if (cur === `-${key}`) th.setAttribute("aria-sort", "descending");
    else th.removeAttribute("aria-sort");
  }
}

function pageAgents(step) {
  state.agentQuery.offset = Math.max(0, state.agentQuery.offset + step * AGENTS_PAGE);
  agentsChanged({ keepPage: true });
}

function wireAgentFilters() {
  const form = $("#agent-filters");
  form.addEventListener("submit", (ev) => ev.preventDefault());
  $("#f-q").addEventListener("input", () => {
    clearTimeout(state.filterTimer);
    state.filterTimer = setTimeout(() => { readFilters(); agentsChanged(); }, FILTER_DEBOUNCE_MS);
  });
  for (const id of ["#f-status", "#f-eq", "#f-lang"]) {
    $(id).addEventListener("change", () => { readFilters(); agentsChanged(); });
  }
  $("#f-clear").addEventListener("click", (ev) => {
    ev.preventDefault();
    for (const id of ["#f-q", "#f-status", "#f-eq", "#f-lang"]) $(id).value = "";
    readFilters();
    agentsChanged();
  });
  for (const th of $$("#agents thead th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.sort));
  }
  $("#ag-prev").addEventListener("click", () => pageAgents(-1));
  $("#ag-next").addEventListener("click", () => pageAgents(1));
}

function renderOverview(o) {
  $("#domain").textContent = `· ${o.domain}`;
  $("#c-processed").textContent = o.stats.processed ?? 0;
  $("#c-decisions").textContent = o.stats.decisions ?? 0;
  $("#c-mot").textContent = state.motCount;
  const dead = $("#c-dead");
  dead.textContent = o.deadletter_backlog;
  dead.classList.toggle("has", o.deadletter_backlog > 0);
  $("#c-workers").textContent = o.workers ?? "none";
}

function renderQueues(queues) {
  const body = $("#queues tbody");
  body.replaceChildren(
    ...queues.map((q) =>
      el("tr", { "data-queue": q.name },
        el("th", { scope: "row", text: q.name === "mot" ? "moments of truth" : q.name }),
        el("td", { class: "num", text: q.depth }),
        el("td", { class: "num", text: fmtS(q.longest_wait_s) }),
        el("td", { class: "num", text: `${fmtS(q.ewt_s)} ± ${fmtS(q.ewt_sd_s)}` }),
        el("td", { class: "num", text: `≥ ${q.min_eq_now}` }),
        el("td", { class: "num", text: `${q.eligible_agents} / ${q.free_agents}` }),
        el("td", { text: q.callback_offered ? "offered" : "no" }),
        el("td", { class: q.stuck > 0 ? "num stuck-count has" : "num stuck-count", text: q.stuck }),
      ),
    ),
  );
  renderStuck(queues);
}

function renderStuck(queues) {
  const items = queues.flatMap((q) => q.stuck_contacts.map((s) => ({ ...s, queue: q.name })));
  const list = $("#stuck");
  if (!items.length) {
    list.replaceChildren(el("li", { class: "muted", text: "none" }));
    return;
  }
  list.replaceChildren(
    ...items.map((s) => {
      const open = el("button", { type: "button", class: "clip", text: s.contact_id, title: s.contact_id, "aria-label": `Open contact ${s.contact_id}` });
      open.addEventListener("click", () => showContact(s.contact_id));
      return el("li", { "data-contact": s.contact_id, "data-code": s.code },
        open, ` ${s.queue}, waiting ${fmtS(s.waited_s)}: `, el("code", { text: s.code }), ` ${visible(s.reason)}`);
    }),
  );
}

function renderAgents(agents) {
  const body = $("#agents tbody");
  const existing = new Map([...body.querySelectorAll("tr")].map((tr) => [tr.dataset.agent, tr]));
  const rows = agents.map((a) => {
    const tr = existing.get(a.agent_id);
    // keep the row the supervisor is editing as it is, with the version they started from: an edit made
    // elsewhere meanwhile must make theirs stale (412), not be overwritten by it
    if (tr && state.editing.has(a.agent_id)) return tr;
    return agentRow(a);
  });
  // the kept rows stay attached while the others change around them: a detached input loses its focus,
  // and the Enter that follows would go nowhere
  const keep = new Set(rows);
  for (const tr of [...body.children]) if (!keep.has(tr)) tr.remove();
  rows.forEach((tr, i) => { if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null); });
}

function agentRow(a) {
  const canEdit = can("agents:write");
  const input = el("input", {
    type: "number", min: 1, max: 5, step: 1, value: a.eq, class: "eq",
    "aria-label": `EQ of agent ${a.agent_id}`, readonly: !canEdit, "data-testid": `eq-${a.agent_id}`,
  });
  const kept = state.notes.get(a.agent_id);
  const note = el("span", { class: `note ${kept ? kept.cls : ""}`.trim(), "aria-live": "polite", text: kept ? kept.text : "" });
  const save = el("button", { type: "button", text: "Save", hidden: true, "aria-label": `Save EQ of agent ${a.agent_id}` });
  const tr = el("tr", { "data-agent": a.agent_id, "data-version": a.version });
  const submit = () => saveEq(tr, a.agent_id, input, note, save);
  input.addEventListener("focus", () => state.editing.add(a.agent_id));
  input.addEventListener("input", () => {
    save.hidden = !canEdit;
    state.editing.add(a.agent_id);
    state.notes.delete(a.agent_id);
    note.textContent = "";
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); submit(); }
    if (ev.key === "Escape") { input.value = a.eq; save.hidden = true; state.editing.delete(a.agent_id); input.blur(); }
  });
  input.addEventListener("blur", () => { if (save.hidden) state.editing.delete(a.agent_id); });
  save.addEventListener("click", submit);

  const status = el("select", { class: "status-select", "aria-label": `Status of agent ${a.agent_id}`, disabled: !canEdit });
  for (const s of ["available", "away", "offline"]) status.append(el("option", { value: s, text: s, selected: s === a.status }));
  status.addEventListener("focus", () => state.editing.add(a.agent_id));
  status.addEventListener("blur", () => state.editing.delete(a.agent_id));
  status.addEventListener("change", () => setStatus(a.agent_id, status.value));

  const channels = Object.keys(a.capacity).filter((ch) => a.capacity[ch] > 0);
  const load = channels.map((ch) => `${ch} ${a.load[ch] || 0}/${a.capacity[ch]}`).join(", ") || "no slots";
  tr.append(
    el("th", { scope: "row", class: "agent" }, clipped(a.agent_id, "agent-id"), a.name ? clipped(a.name, "muted agent-name") : null),
    el("td", {}, el("span", { class: `badge ${a.status}`, text: a.status }), " ", status),
    el("td", {}, el("span", { class: "eq-cell" }, input, save, note)),
    el("td", { text: a.languages.join(", ") }),
    el("td", { text: load }),
    el("td", {}, clipped(a.tags.join(", "))),
  );
  return tr;
}

async function saveEq(tr, agentId, input, note, save) {
  const eq = Number(input.value);
  if (!Number.isInteger(eq) || eq < 1 || eq > 5) {
    note.className = "note failed";
    note.textContent = "EQ is 1 to 5";
    return;
  }
  note.className = "note";
  note.textContent = "saving…";
  try {
    const { data } = await api(`/v1/agents/${encodeURIComponent(agentId)}/skills`, {
      method: "PATCH",
      body: { eq },
      headers: { "If-Match": `"${tr.dataset.version}"` },
    });
    tr.dataset.version = data.version;
    tr.dataset.saved = String(data.eq);
    showNote(agentId, note, `saved (v${data.version})`, "saved");
    save.hidden = true;
    state.editing.delete(agentId);
    say(`Agent ${agentId}: EQ ${data.eq}; applies to the next decision.`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 412) {
      await refused(tr, agentId, input, note, save, eq);
    } else {
      showNote(agentId, note, e.message, "failed");
    }
  }
}

function showNote(agentId, note, text, cls) {
  note.className = `note ${cls}`;
  note.textContent = text;
  state.notes.set(agentId, { text, cls });
}

// a stale edit (412): not saved. Show the value that is current now, and say the edit was refused.
async function refused(tr, agentId, input, note, save, wanted) {
  let text = `refused: EQ ${wanted} not saved, the agent was changed elsewhere`;
  try {
    const { data } = await api(`/v1/agents/${encodeURIComponent(agentId)}`);
    input.value = data.eq;
    tr.dataset.version = data.version;
    text = `refused: EQ ${wanted} not saved; changed elsewhere, it is ${data.eq} now (v${data.version})`;
  } catch { /* the note still says it was refused; the next refresh shows the current value */ }
  save.hidden = true;
  state.editing.delete(agentId);
  input.blur();
  showNote(agentId, note, text, "failed");
  say(`Agent ${agentId}: ${text}.`);
}

async function setStatus(agentId, status) {
  try {
    await api(`/v1/agents/${encodeURIComponent(agentId)}/status`, { method: "PUT", body: { status } });
    say(`Agent ${agentId}: ${status} requested; the workers apply it.`);
  } catch (e) {
    say(`Status change failed: ${e.message}`);
  }
}

// ---- the floor's charts: inline SVG, drawn here from GET /v1/stats/series and /v1/stats/agents ------------
const VIEW = { w: 560, h: 210, l: 58, r: 16, t: 12, b: 34 };
const CLASS_NAME = { mot: "moments of truth", routine: "routine" };

function fmtClock(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
function fmtPct(x) { return x === null || x === undefined ? "–" : `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`; }
function fmtNum(x, digits = 2) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }
// an axis tick in seconds: as many decimals as the step needs, no trailing zeros
function tickS(v) {
  if (v < 60) return `${+v.toFixed(1)} s`;
  if (v < 3600) return `${+(v / 60).toFixed(1)} min`;
  return `${+(v / 3600).toFixed(1)} h`;
}
function signed(x) { return `${x >= 0 ? "+" : ""}${x.toFixed(2)}`; }

function niceStep(max, n = 4) {
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

// a step for an axis in seconds that reads as time: 15 s, 1 min, 5 min, not 1.7 min
function niceStepS(max, n = 4) {
  const raw = max / n;
  for (const m of [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400]) if (raw <= m) return m;
  return niceStep(max, n);
}

function svgTitled(tag, attrs, title) {
  const e = svgEl(tag, attrs);
  if (title) { const t = svgEl("title"); t.textContent = title; e.append(t); }
  return e;
}

function svgText(x, y, text, attrs = {}) {
  const e = svgEl("text", { x, y, ...attrs });
  e.textContent = text;
  return e;
}

// a chart's frame: axes, grid and labels; answers the scales and the layer the data goes on
function frame(svg, { x0, x1, yMax, yLabel, yFmt = (v) => String(v), yStep, xTicks, xFmt, h = VIEW.h }) {
  const { w, l, r, t, b } = VIEW;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const step = yStep || niceStep(yMax > 0 ? yMax : 1);
  const top = Math.max(step, Math.ceil((yMax > 0 ? yMax : 1) / step) * step);
  const x = (v) => l + ((v - x0) / (x1 - x0 || 1)) * (w - l - r);
  const y = (v) => h - b - (v / top) * (h - t - b);
  const axes = svgEl("g", { class: "axis" });
  for (let v = 0; v <= top + 1e-9; v += step) {
    axes.append(svgEl("line", { x1: l, x2: w - r, y1: y(v), y2: y(v), class: "grid-line" }));
    axes.append(svgText(l - 6, y(v) + 4, yFmt(v), { "text-anchor": "end" }));
  }
  axes.append(svgEl("path", { d: `M${l},${t}V${h - b}H${w - r}` }));
  for (const v of xTicks) {
    axes.append(svgEl("line", { x1: x(v), x2: x(v), y1: h - b, y2: h - b + 4 }));
    axes.append(svgText(x(v), h - b + 16, xFmt(v), { "text-anchor": "middle" }));
  }
  axes.append(svgText(10, t + (h - t - b) / 2, yLabel, { transform: `rotate(-90 10 ${t + (h - t - b) / 2})`, "text-anchor": "middle" }));
  const layer = svgEl("g", { class: "data" });
  svg.replaceChildren(axes, layer);
  return { x, y, layer, top };
}

function timeTicks(t0, t1) {
  const every = t1 - t0 > 2 * 3600 ? 3600 : 600;
  const out = [];
  for (let v = Math.ceil(t0 / every) * every; v <= t1; v += every) out.push(v);
  return out;
}

function describe(svg, id, text, points) {
  const d = svgEl("desc", { id });
  d.textContent = text;
  svg.prepend(d);
  svg.dataset.points = String(points);
}

function noData(svg, id, text) {
  svg.setAttribute("viewBox", `0 0 ${VIEW.w} ${VIEW.h / 2}`);
  svg.replaceChildren(svgText(VIEW.w / 2, VIEW.h / 4, text, { class: "empty", "text-anchor": "middle" }));
  describe(svg, id, text, 0);
}

// one series over the intervals: a path broken where an interval has no value, and a point per value
function drawLine(f, t, values, cls, label, fmt) {
  let d = "";
  let pen = false;
  let n = 0;
  values.forEach((v, i) => {
    if (v === null || v === undefined) { pen = false; return; }
    const X = f.x(t[i] + INTERVAL_S / 2).toFixed(1);
    const Y = f.y(v).toFixed(1);
    d += `${pen ? "L" : "M"}${X},${Y}`;
    pen = true;
    n += 1;
    f.layer.append(svgTitled("circle", { cx: X, cy: Y, r: 2.5, class: `pt ${cls}` }, `${label} ${fmtClock(t[i])}: ${fmt(v)}`));
  });
  if (d) f.layer.prepend(svgEl("path", { d, class: `series ${cls}` }));
  return n;
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
}

function maxOf(...lists) {
  let m = 0;
  for (const xs of lists) for (const v of xs) if (v !== null && v !== undefined && v > m) m = v;
  return m;
}

function timeFrame(svg, s, yMax, yLabel, yFmt, yStep) {
  const x0 = s.t[0];
  const x1 = s.t[s.t.length - 1] + s.interval_s;
  return frame(svg, { x0, x1, yMax, yLabel, yFmt, yStep, xTicks: timeTicks(x0, x1), xFmt: fmtClock });
}

function drawWaits(s) {
  const svg = $("#chart-waits svg");
  const { mot, routine } = s.waits;
  const top = maxOf(mot.p90_s, routine.p90_s, mot.p50_s, routine.p50_s);
  if (!mot.answered.some((n) => n > 0) && !routine.answered.some((n) => n > 0)) {
    noData(svg, "chart-waits-d", "No contact answered in the last hour yet.");
    return;
  }
  const f = timeFrame(svg, s, top, "wait", tickS, niceStepS(Math.max(top, 1)));
  let n = 0;
  n += drawLine(f, s.t, routine.p90_s, "s-routine dash", "routine p90", fmtS);
  n += drawLine(f, s.t, routine.p50_s, "s-routine", "routine p50", fmtS);
  n += drawLine(f, s.t, mot.p90_s, "s-mot dash", "moments of truth p90", fmtS);
  n += drawLine(f, s.t, mot.p50_s, "s-mot", "moments of truth p50", fmtS);
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  describe(svg, "chart-waits-d",
    `Answered in the last hour: ${sum(mot.answered)} moments of truth, latest median wait ${fmtS(lastValue(mot.p50_s))}, ` +
    `90th percentile ${fmtS(lastValue(mot.p90_s))}; ${sum(routine.answered)} routine, latest median ` +
    `${fmtS(lastValue(routine.p50_s))}, 90th percentile ${fmtS(lastValue(routine.p90_s))}.`, n);
}

function drawDepth(s) {
  const svg = $("#chart-depth svg");
  const mq = s.depth_max.mot || [];
  const gq = s.depth_max.general || [];
  if (![...mq, ...gq].some((v) => v !== null && v !== undefined)) {
    noData(svg, "chart-depth-d", "No queue sample in the last hour: is a worker running?");
    return;
  }
  const f = timeFrame(svg, s, Math.max(4, maxOf(mq, gq)), "contacts waiting", (v) => String(Math.round(v)));
  let n = drawLine(f, s.t, gq, "s-routine", "general queue", String);
  n += drawLine(f, s.t, mq, "s-mot", "moments-of-truth queue", String);
  describe(svg, "chart-depth-d",
    `Queue depth now: ${lastValue(mq) ?? "–"} in the moments-of-truth queue, ${lastValue(gq) ?? "–"} in the general ` +
    `queue; highest in the hour ${maxOf(mq)} and ${maxOf(gq)}.`, n);
}

function drawMot(s) {
  const svg = $("#chart-mot svg");
  const counts = s.moments_of_truth;
  if (!counts.some((v) => v !== null && v !== undefined)) {
    noData(svg, "chart-mot-d", "No floor sample in the last hour: is a worker running?");
    return;
  }
  const f = timeFrame(svg, s, Math.max(4, maxOf(counts)), "per minute", (v) => String(Math.round(v)));
  const width = (f.x(s.t[0] + s.interval_s) - f.x(s.t[0])) * 0.8;
  let n = 0;
  counts.forEach((v, i) => {
    if (!v) return;
    const X = f.x(s.t[i]) + width * 0.125;
    f.layer.append(svgTitled("rect", { x: X.toFixed(1), y: f.y(v).toFixed(1), width: width.toFixed(1), height: (f.y(0) - f.y(v)).toFixed(1), class: "bar" }, `${fmtClock(s.t[i])}: ${v}`));
    n += 1;
  });
  const total = counts.reduce((a, v) => a + (v || 0), 0);
  describe(svg, "chart-mot-d", `${total} moments of truth in the last hour; at most ${maxOf(counts)} in a minute.`, n);
}

function drawAnnounced(s) {
  const svg = $("#chart-ewt svg");
  const pairs = s.announced;
  if (!pairs.length) {
    noData(svg, "chart-ewt-d", "No contact that was announced a wait has been answered in the last hour.");
    return;
  }
  const m = Math.max(10, ...pairs.map((p) => Math.max(p.announced_s, p.actual_s, p.high_s || 0)));
  const step = niceStepS(m);
  const top = Math.ceil(m / step) * step;
  const xTicks = [];
  for (let v = 0; v <= top + 1e-9; v += step) xTicks.push(v);
  const f = frame(svg, { x0: 0, x1: top, yMax: top, yLabel: "actual wait", yFmt: tickS, yStep: step, xTicks, xFmt: tickS });
  f.layer.append(svgEl("line", { x1: f.x(0), y1: f.y(0), x2: f.x(f.top), y2: f.y(f.top), class: "diag" }));
  f.layer.append(svgText(VIEW.w - VIEW.r, VIEW.h - 2, "announced wait", { "text-anchor": "end" }));
  let inside = 0;
  let err = 0;
  for (const p of pairs) {
    if (p.low_s !== null && p.high_s !== null) {
      f.layer.append(svgEl("line", { x1: f.x(p.announced_s), x2: f.x(p.announced_s), y1: f.y(p.low_s), y2: f.y(p.high_s), class: "band" }));
      if (p.low_s <= p.actual_s && p.actual_s <= p.high_s) inside += 1;
    }
    err += Math.abs(p.actual_s - p.announced_s);
  }
  for (const p of pairs) {
    const cls = p.moment_of_truth ? "s-mot" : "s-routine";
    f.layer.append(svgTitled("circle", { cx: f.x(p.announced_s).toFixed(1), cy: f.y(p.actual_s).toFixed(1), r: 3.5, class: `dot ${cls}` },
      `${fmtClock(p.ts)} ${CLASS_NAME[p.moment_of_truth ? "mot" : "routine"]}: announced ${fmtS(p.announced_s)}, waited ${fmtS(p.actual_s)}`));
  }
  describe(svg, "chart-ewt-d",
    `${pairs.length} answered contacts had been announced a wait: mean absolute error ${fmtS(err / pairs.length)}, ` +
    `${fmtPct(inside / pairs.length)} inside the announced band.`, pairs.length);
}

function clipText(text, n) { return text.length > n ? `${text.slice(0, n - 1)}…` : text; }

function drawAgents(page) {
  const svg = $("#chart-agents svg");
  const rows = page.items;
  if (!rows.length) {
    noData(svg, "chart-agents-d", "No post-contact outcome recorded yet.");
    return;
  }
  const rowH = 24;
  const h = VIEW.t + rows.length * rowH + VIEW.b;
  const labelW = 150;
  const right = 230;
  const w = 860;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const x = (v) => labelW + ((v - 1) / 4) * (w - labelW - right);
  const axes = svgEl("g", { class: "axis" });
  for (let v = 1; v <= 5; v += 1) {
    axes.append(svgEl("line", { x1: x(v), x2: x(v), y1: VIEW.t, y2: h - VIEW.b, class: "grid-line" }));
    axes.append(svgText(x(v), h - VIEW.b + 16, String(v), { "text-anchor": "middle" }));
  }
  axes.append(svgText((x(1) + x(5)) / 2, h - 4, "mean CSAT (1-5)", { "text-anchor": "middle" }));
  const layer = svgEl("g", { class: "data" });
  const said = [];
  rows.forEach((a, i) => {
    const yc = VIEW.t + i * rowH + rowH / 2;
    const who = a.name ? `${a.name} (${a.agent_id})` : a.agent_id;
    const g = svgTitled("g", { class: "agent-row", "data-agent": a.agent_id }, `${visible(who)}: ${visible(a.reason)}`);
    g.append(svgText(6, yc + 4, clipText(visible(a.name || a.agent_id), 22), { class: "label" }));
    for (const [grp, cls, dy, shape] of [[a.moments_of_truth, "s-mot", -3, "dot"], [a.routine, "s-routine", 4, "sq"]]) {
      if (grp.mean_csat === null) continue;
      if (grp.ci95) {
        g.append(svgEl("line", { x1: x(Math.max(1, grp.ci95[0])), x2: x(Math.min(5, grp.ci95[1])), y1: yc + dy, y2: yc + dy, class: `ci ${cls}` }));
      }
      const tip = `${CLASS_NAME[cls === "s-mot" ? "mot" : "routine"]}: ${grp.mean_csat.toFixed(2)} over ${grp.n}` +
        (grp.ci95 ? ` (95% ${grp.ci95[0].toFixed(2)}–${grp.ci95[1].toFixed(2)})` : "");
      if (shape === "dot") g.append(svgTitled("circle", { cx: x(grp.mean_csat), cy: yc + dy, r: 4.5, class: `dot pt ${cls}` }, tip));
      else g.append(svgTitled("rect", { x: x(grp.mean_csat) - 4, y: yc + dy - 4, width: 8, height: 8, class: `sq pt ${cls}` }, tip));
    }
    const arrow = a.change > 0 ? "eq-up" : a.change < 0 ? "eq-down" : "";
    const eqText = a.change ? `EQ ${a.eq} → ${a.suggested_eq}` : `EQ ${a.eq} =`;
    g.append(svgText(w - right + 10, yc + 4, eqText, { class: `label ${arrow}`.trim() }));
    const ci = a.mot_vs_peers ? `${signed(a.mot_difference)} [${signed(a.mot_vs_peers[0])}, ${signed(a.mot_vs_peers[1])}]` : "too few to compare";
    g.append(svgText(w - right + 82, yc + 4, ci));
    layer.append(g);
    said.push(`${visible(a.name || a.agent_id)}: moments of truth ${fmtNum(a.moments_of_truth.mean_csat)} (n ${a.moments_of_truth.n}), ` +
      `routine ${fmtNum(a.routine.mean_csat)} (n ${a.routine.n}); ${a.change ? `EQ ${a.eq} to ${a.suggested_eq}` : `EQ ${a.eq} kept`}`);
  });
  svg.replaceChildren(axes, layer);
  describe(svg, "chart-agents-d", `${rows.length} of ${page.total} agents with outcomes. ${said.join(". ")}.`, rows.length);
}

function kpiGroup(cls, k) {
  const tiles = [
    ["Contacts", String(k.contacts), "to a person"],
    ["CSAT", fmtNum(k.csat), `n ${k.csat_n}`],
    ["First-contact resolution", fmtPct(k.first_contact_resolution), `n ${k.fcr_n}`],
    ["Repeat contacts", fmtPct(k.repeat_contact_rate), `of ${k.contacts}`],
    ["Hand-offs per contact", fmtNum(k.handoffs_per_contact), "declined, missed, revoked"],
    ["Abandoned", fmtPct(k.abandonment), `${k.abandoned} of ${k.contacts}`],
  ];
  return el("div", { class: `kpi-group ${cls}`, role: "group", "aria-labelledby": `kpi-${cls}-h`, "data-class": cls },
    el("h3", { id: `kpi-${cls}-h`, text: cls === "mot" ? "Moments of truth" : "Routine" }),
    el("dl", {}, ...tiles.map(([label, value, n]) => el("div", { class: "kpi" },
      el("dt", { text: label }), el("dd", {}, value, el("span", { class: "n", text: n }))))));
}

function renderCharts(s, agents) {
  $("#kpis").replaceChildren(kpiGroup("mot", s.kpis.mot), kpiGroup("routine", s.kpis.routine));
  drawWaits(s);
  drawDepth(s);
  drawMot(s);
  drawAnnounced(s);
  drawAgents(agents);
  $("#charts-asof").textContent = `as of ${fmtTime(s.ts)}, per ${s.interval_s / 60} min; repeats within ${fmtS(s.fcr_window_s)}`;
  const short = Object.entries(s.sources).filter(([, c]) => !c.complete).map(([name, c]) => `${name} since ${c.oldest_ts ? fmtClock(c.oldest_ts) : "–"}`);
  $("#charts-note").textContent = short.length ? `The capped logs do not reach back an hour: ${short.join(", ")}.` : "";
}

async function refreshCharts() {
  try {
    const [series, agents] = await Promise.all([
      api(`/v1/stats/series?window_s=${WINDOW_S}&interval_s=${INTERVAL_S}`),
      api(`/v1/stats/agents?limit=${AGENTS_CHARTED}`),
    ]);
    renderCharts(series.data, agents.data);
  } catch (e) {
    $("#charts-note").textContent = `Charts not refreshed: ${e.message}`;
  }
}

// ---- moments-of-truth feed -------------------------------------------------------------------------------
async function loadFeed() {
  try {
    const { data } = await api("/v1/decisions?mot=true&limit=30");
    const items = data.items.slice().reverse();
    for (const d of items) addFeedItem(d);
    state.lastFeedId = data.items.length ? data.items[0].id : null;
  } catch (e) {
    say(`Feed history failed: ${e.message}`);
  }
  follow();
}

async function follow() {
  const ctl = new AbortController();
  state.feedAbort = ctl;
  const q = state.lastFeedId ? `&after=${encodeURIComponent(state.lastFeedId)}` : "";
  try {
    const res = await fetch(`/v1/decisions/stream?mot=true${q}`, {
      headers: { Authorization: `Bearer ${state.key}`, Accept: "text/event-stream" },
      signal: ctl.signal,
    });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    setFeed(true);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        handleSse(buf.slice(0, cut));
        buf = buf.slice(cut + 2);
      }
    }
  } catch (e) {
    if (ctl.signal.aborted) return;
  }
  setFeed(false);
  if (!ctl.signal.aborted && state.key) setTimeout(follow, 1000); // the server closes feeds now and then
}

function handleSse(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  if (event !== "decision" || !data.length) return;
  if (id) state.lastFeedId = id;
  try { addFeedItem(JSON.parse(data.join("\n"))); } catch { /* a malformed event is skipped */ }
}

function setFeed(on) {
  const e = $("#c-feed");
  e.textContent = on ? "live" : "reconnecting";
  e.classList.toggle("on", on);
  e.classList.toggle("off", !on);
}

function addFeedItem(d) {
  if (!d.moment_of_truth) return;
  // work finished normally is not news; a declined or missed offer is
  if (d.action === "released" && (d.reasons || []).every((r) => r.code === "released")) return;
  state.motCount += 1;
  $("#c-mot").textContent = state.motCount;
  const spark = svgEl("svg", { class: "spark", viewBox: "0 0 90 24", role: "img", "aria-label": `intensity of ${d.contact_id}` });
  const open = el("button", { type: "button", class: "clip", text: d.contact_id, title: d.contact_id, "aria-label": `Open contact ${d.contact_id}` });
  open.addEventListener("click", () => showContact(d.contact_id));
  const where = d.action === "offer" ? `offered to ${d.agent_id}` : d.action === "queued" ? `queued (${d.queue})` : d.action.replace("_", " ");
  const li = el("li", { class: "mot", "data-contact": d.contact_id, "data-action": d.action },
    el("div", { class: "head" },
      el("span", { class: "time", text: fmtTime(d.ts) }),
      open,
      clipped(where, "action"),
      el("span", { text: `intensity ${Number(d.intensity).toFixed(2)}` }),
      spark,
    ),
    el("ul", { class: "reasons" }, ...(d.reasons || []).map((r) => el("li", {}, el("code", { text: r.code }), " ", visible(r.text)))),
  );
  const feed = $("#feed");
  feed.prepend(li);
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  drawSpark(d.contact_id, spark, d.intensity);
}

async function drawSpark(contactId, svg, fallback) {
  let entry = state.sparks.get(contactId);
  if (!entry || Date.now() - entry.at > SPARK_TTL_MS) {
    try {
      const { data } = await api(`/v1/contacts/${encodeURIComponent(contactId)}`);
      entry = { at: Date.now(), intensities: data.trajectory.intensities };
    } catch {
      entry = { at: Date.now(), intensities: [fallback] };
    }
    state.sparks.set(contactId, entry);
    if (state.sparks.size > 500) state.sparks.delete(state.sparks.keys().next().value);
  }
  const vals = entry.intensities.length ? entry.intensities : [fallback];
  const w = 90, h = 24;
  const step = vals.length > 1 ? (w - 4) / (vals.length - 1) : 0;
  const pts = vals.map((v, i) => `${(2 + i * step).toFixed(1)},${(h - 2 - v * (h - 4)).toFixed(1)}`);
  if (vals.length === 1) pts.push(`${w - 2},${(h - 2 - vals[0] * (h - 4)).toFixed(1)}`);
  svg.replaceChildren(svgEl("line", { x1: 0, y1: h - 2, x2: w, y2: h - 2 }), svgEl("polyline", { points: pts.join(" ") }));
  svg.setAttribute("aria-label", `intensity by turn of ${contactId}: ${vals.map((v) => v.toFixed(2)).join(", ")}`);
}

// ---- contact detail --------------------------------------------------------------------------------------
// a voice turn's arousal (docs/voice.md): where it came from, and the words' own intensity when it raised it
function voiceChip(t) {
  if (t.arousal === null || t.arousal === undefined) return null;
  const raised = t.text_intensity === null || t.text_intensity === undefined ? "" : ` (words ${t.text_intensity})`;
  return el("span", { class: "voice", title: `vocal arousal from ${t.voice || "audio"}`, text: ` · voice ${t.arousal}${raised}` });
}

async function showContact(contactId) {
  const dlg = $("#contact");
  const body = $("#contact-body");
  $("#contact-h").textContent = `Contact ${contactId}`;
  body.replaceChildren(el("p", { text: "loading…" }));
  if (!dlg.open) dlg.showModal();
  try {
    const { data: c } = await api(`/v1/contacts/${encodeURIComponent(contactId)}`);
    const facts = el("dl", {},
      ...[["status", c.status], ["channel", c.channel], ["language", c.language], ["tier", c.tier],
        ["queue", c.queue || "–"], ["agent", c.agent_id || "–"], ["moment of truth", c.moment_of_truth ? "yes" : "no"],
        ["topic", c.topic ? `${c.topic} (${c.topic_prob})` : "–"], ["peak intensity", c.trajectory.peak]]
        .map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", {}, clipped(v)))),
    );
    const transcript = el("ol", { class: "transcript" },
      ...c.transcript.map((t) => el("li", {},
        el("span", { class: "speaker", text: t.speaker }),
        el("span", { class: "said", text: t.text === null ? "(text hidden for this key)" : visible(t.text) }),
        t.intensity === null || t.intensity === undefined ? null : el("span", { class: "muted", text: ` · ${t.intensity}` }),
        voiceChip(t))),
    );
    const decisions = el("ol", {},
      ...c.decisions.map((d) => el("li", {},
        el("strong", { text: `${fmtTime(d.ts)} ${d.action}${d.agent_id ? ` → ${d.agent_id}` : ""}` }),
        el("ul", {}, ...(d.reasons || []).map((r) => el("li", {}, el("code", { text: r.code }), " ", visible(r.text)))))),
    );
    body.replaceChildren(facts, el("h3", { text: "Transcript" }), transcript, el("h3", { text: "Decisions" }), decisions);
  } catch (e) {
    body.replaceChildren(el("p", { class: "error", text: e.message }));
  }
}

// ---- dead letters ----------------------------------------------------------------------------------------
async function loadDeadLetters() {
  const panel = $("#deadletters-panel");
  if (!can("deadletter:read")) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  const before = state.deadPages[state.deadPages.length - 1];
  const q = before ? `&before=${encodeURIComponent(before)}` : "";
  try {
    const { data } = await api(`/v1/deadletters?limit=${DEADLETTER_PAGE}${q}`);
    renderDeadLetters(data);
  } catch (e) {
    $("#deadletters").replaceChildren(el("li", { class: "error", text: e.message }));
  }
}

function renderDeadLetters(page) {
  const n = state.deadPages.length;
  $("#dl-page").textContent = page.items.length
    ? `page ${n}: ${page.items.length} of ${page.count}, newest first`
    : `page ${n}: none`;
  $("#dl-newer").disabled = n <= 1;
  $("#dl-older").disabled = !page.next_before;
  $("#dl-older").dataset.next = page.next_before || "";
  $("#deadletters").replaceChildren(
    ...page.items.map((d) => {
      const open = el("button", { type: "button", class: "clip", text: d.id, title: d.id, "aria-label": `Open dead letter ${d.id}` });
      open.addEventListener("click", () => showDeadLetter(d.id));
      return el("li", { "data-deadletter": d.id },
        open, " ", el("span", { class: "muted", text: d.ts ? fmtTime(d.ts) : "" }),
        ` · ${d.deliveries} deliveries · ${d.payload_bytes} bytes: `, clipped(d.error, "dl-error"));
    }),
  );
}

function browseDeadLetters(step) {
  if (step > 0 && $("#dl-older").dataset.next) state.deadPages.push($("#dl-older").dataset.next);
  if (step < 0 && state.deadPages.length > 1) state.deadPages.pop();
  if (step === 0) state.deadPages = [null];
  loadDeadLetters();
}

async function showDeadLetter(id) {
  const dlg = $("#contact");
  const body = $("#contact-body");
  $("#contact-h").textContent = `Dead letter ${id}`;
  body.replaceChildren(el("p", { text: "loading…" }));
  if (!dlg.open) dlg.showModal();
  try {
    const { data: d } = await api(`/v1/deadletters/${encodeURIComponent(id)}`);
    const facts = el("dl", {},
      ...[["stream entry", d.stream_id || "–"], ["error", d.error], ["deliveries", d.deliveries],
        ["consumer", d.consumer || "–"], ["when", d.ts ? fmtTime(d.ts) : "–"]]
        .map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: visible(v) }))),
    );
    body.replaceChildren(facts, el("h3", { text: "Payload" }), el("pre", { class: "payload", text: visible(d.payload) }));
  } catch (e) {
    body.replaceChildren(el("p", { class: "error", text: e.message }));
  }
}

// ---- wiring ----------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.key = $("#key").value.trim();
    $("#key").value = "";
    if (!state.key) return;
    sessionStorage.setItem(KEY_STORE, state.key);
    start();
  });
  $("#forget").addEventListener("click", () => logout(""));
  $("#dl-newest").addEventListener("click", () => browseDeadLetters(0));
  $("#dl-newer").addEventListener("click", () => browseDeadLetters(-1));
  $("#dl-older").addEventListener("click", () => browseDeadLetters(1));
  wireAgentFilters();
  if (state.key) start();
  else logout("");
});
