// mot-router dashboard: plain JavaScript, no build step. Every value from the API is written with
// textContent (never innerHTML), so ids and reasons can never inject markup.
"use strict";

const KEY_STORE = "mot-router.key";
const REFRESH_MS = 2000;
const FEED_MAX = 60;
const SPARK_TTL_MS = 3000;
const DEADLETTER_PAGE = 20;
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
};

const $ = (sel) => document.querySelector(sel);

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
  await loadDeadLetters();
  await loadFeed();
  state.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

function stopAll() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  if (state.feedAbort) state.feedAbort.abort();
  state.feedAbort = null;
}

// ---- overview, queues, agents ----------------------------------------------------------------------------
async function refresh() {
  try {
    const [ov, qs, ag] = await Promise.all([api("/v1/overview"), api("/v1/queues"), api("/v1/agents")]);
    renderOverview(ov.data);
    renderQueues(qs.data.queues);
    renderAgents(ag.data);
  } catch (e) {
    say(e instanceof ApiError && e.status === 503 ? "Store unreachable; retrying…" : `Refresh failed: ${e.message}`);
  }
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
  if (state.key) start();
  else logout("");
});
