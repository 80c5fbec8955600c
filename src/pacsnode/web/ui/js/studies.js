// The study list: search (name with wildcards, ID, date range, modality, accession),
// sorted and paged. Results come from /api/studies in chunks of CHUNK rows; a search whose
// whole result fits in one chunk is sorted and paged here, a larger one is paged by the
// server (in the order studies were stored) and each page sorted on its own.

import { api } from "./api.js";
import { clear, date, debounce, enc, errorToast, h, list, personName } from "./util.js";

const CHUNK = 500;
const PAGE_SIZES = [25, 50, 100];
const MODALITIES = ["", "CT", "MR", "CR", "DX", "US", "NM", "PT", "XA", "MG", "RF", "OT", "SC", "SR"];
const COLUMNS = [
  ["patient_name", "Patient name"], ["patient_id", "Patient ID"], ["birth_date", "Birth date"],
  ["study_date", "Study date"], ["description", "Description"], ["modalities", "Modalities"],
  ["accession", "Accession"], ["series", "Series"], ["instances", "Instances"],
];
const NUMERIC = new Set(["series", "instances"]);

function toDicomDate(value) {
  return value ? value.replaceAll("-", "") : "";
}

// The QIDO/C-FIND filters of a search form's state.
export function filters(state) {
  const out = {};
  const name = (state.name || "").trim();
  if (name) out.PatientName = /[*?]/.test(name) ? name : `${name}*`;
  if ((state.id || "").trim()) out.PatientID = state.id.trim();
  if ((state.accession || "").trim()) out.AccessionNumber = state.accession.trim();
  if (state.modality) out.ModalitiesInStudy = state.modality;
  const from = toDicomDate(state.from);
  const to = toDicomDate(state.to);
  if (from || to) out.StudyDate = from === to ? from : `${from}-${to}`;
  return out;
}

function compare(key, dir) {
  return (a, b) => {
    let x = a[key];
    let y = b[key];
    if (Array.isArray(x)) x = x.join(",");
    if (Array.isArray(y)) y = y.join(",");
    if (NUMERIC.has(key)) return dir * ((Number(x) || 0) - (Number(y) || 0));
    return dir * String(x ?? "").localeCompare(String(y ?? ""), undefined, { sensitivity: "base" });
  };
}

export async function render(main, _args, query) {
  const state = {
    name: query.name || "", id: query.id || "", from: query.from || "", to: query.to || "",
    modality: query.modality || "", accession: query.accession || "",
    page: Number(query.page || 0), size: PAGE_SIZES.includes(Number(query.size)) ? Number(query.size) : 25,
    sort: query.sort || "", dir: query.dir === "desc" ? -1 : 1,
  };
  let chunk = null; // {offset, items, more, key}
  let total = null;
  let controller = null;

  const input = (name, attrs) => h("input", {
    name, value: state[name], autocomplete: "off",
    oninput: (e) => { state[name] = e.target.value; state.page = 0; searchSoon(); }, ...attrs });
  const modality = h("select", {
    name: "modality", title: "Modality",
    onchange: (e) => { state.modality = e.target.value; state.page = 0; search(); } },
  MODALITIES.map((m) => h("option", { value: m, selected: m === state.modality }, m || "Any")));
  const size = h("select", {
    title: "Studies per page", onchange: (e) => { state.size = Number(e.target.value); state.page = 0; search(); } },
  PAGE_SIZES.map((n) => h("option", { value: n, selected: n === state.size }, `${n} per page`)));

  const form = h("form.search", { onsubmit: (e) => { e.preventDefault(); searchSoon.cancel(); search(); }, role: "search" },
    h("label", "Patient name", input("name", { placeholder: "DOE* or ?OE", type: "search" })),
    h("label", "Patient ID", input("id", { type: "search" })),
    h("label", "Study date from", input("from", { type: "date" })),
    h("label", "to", input("to", { type: "date" })),
    h("label", "Modality", modality),
    h("label", "Accession", input("accession", { type: "search" })),
    h("div.search-buttons",
      h("button.btn.primary", { type: "submit" }, "Search"),
      h("button.btn", { type: "button", onclick: reset }, "Clear")));

  const head = h("tr");
  const body = h("tbody");
  const table = h("table.list.studies", h("thead", head), body);
  const info = h("span.muted");
  const prev = h("button.btn", { onclick: () => { state.page--; show(); }, "aria-label": "Previous page" }, "‹ Previous");
  const next = h("button.btn", { onclick: () => { state.page++; show(); }, "aria-label": "Next page" }, "Next ›");
  const note = h("span.muted.small");
  main.append(h("div.page",
    h("div.page-head", h("h1", "Studies"), h("span.spacer"),
      h("a.btn", { href: "#/upload" }, "Upload…")),
    form,
    h("div.table-wrap", table),
    h("div.pager", info, note, h("span.spacer"), size, prev, next)));

  function reset() {
    searchSoon.cancel();
    Object.assign(state, { name: "", id: "", from: "", to: "", modality: "", accession: "", page: 0 });
    for (const el of form.querySelectorAll("input")) el.value = "";
    modality.value = "";
    search();
  }

  function saveUrl() {
    const q = new URLSearchParams();
    for (const k of ["name", "id", "from", "to", "modality", "accession", "sort"]) if (state[k]) q.set(k, state[k]);
    if (state.page) q.set("page", state.page);
    if (state.size !== 25) q.set("size", state.size);
    if (state.sort && state.dir < 0) q.set("dir", "desc");
    const text = q.toString();
    history.replaceState(null, "", `#/studies${text ? `?${text}` : ""}`);
  }

  function header() {
    clear(head, COLUMNS.map(([key, label]) => h("th", {
      class: `sortable${state.sort === key ? (state.dir > 0 ? " asc" : " desc") : ""}${NUMERIC.has(key) ? " num" : ""}`,
      "aria-sort": state.sort === key ? (state.dir > 0 ? "ascending" : "descending") : "none",
      onclick: () => {
        if (state.sort === key) state.dir = -state.dir; else { state.sort = key; state.dir = 1; }
        show();
      } }, label)));
  }

  async function load(offset) {
    const key = JSON.stringify(filters(state));
    if (chunk && chunk.key === key && offset >= chunk.offset && offset < chunk.offset + chunk.items.length) return;
    if (chunk && chunk.key === key && offset === chunk.offset + chunk.items.length && !chunk.more) return;
    if (controller) controller.abort();
    controller = new AbortController();
    const start = Math.floor(offset / CHUNK) * CHUNK;
    const page = await api.studies({ ...filters(state), limit: CHUNK, offset: start }, controller.signal);
    chunk = { offset: start, items: page.items, more: page.more, key };
  }

  async function search() {
    chunk = null;
    await show();
  }
  const searchSoon = debounce(search, 300);

  let shown = 0;
  async function show() {
    const mine = ++shown;
    table.dataset.state = "loading";
    saveUrl();
    header();
    const offset = state.page * state.size;
    try {
      await load(offset);
    } catch (error) {
      if (mine === shown) table.dataset.state = "error";
      errorToast(error);
      return;
    }
    if (mine !== shown) return; // a newer search is on its way
    const complete = chunk.offset === 0 && !chunk.more;
    let rows;
    if (complete) {
      const all = state.sort ? [...chunk.items].sort(compare(state.sort, state.dir)) : chunk.items;
      rows = all.slice(offset, offset + state.size);
      total = chunk.items.length;
    } else {
      rows = chunk.items.slice(offset - chunk.offset, offset - chunk.offset + state.size);
      if (state.sort) rows = [...rows].sort(compare(state.sort, state.dir));
      total = null;
    }
    if (!rows.length && state.page > 0) { state.page = 0; return show(); }
    const moreAfter = complete ? offset + state.size < total
      : offset + state.size < chunk.offset + chunk.items.length || chunk.more;
    clear(body, rows.length ? rows.map(row) : h("tr", h("td.empty", { colSpan: COLUMNS.length },
      Object.keys(filters(state)).length ? "No study matches this search." : "No studies yet: upload some, or send them with C-STORE.")));
    const last = offset + rows.length;
    info.textContent = rows.length
      ? `${(offset + 1).toLocaleString()}–${last.toLocaleString()} of ${total !== null ? total.toLocaleString() : `${(chunk.offset + chunk.items.length).toLocaleString()}+`}`
      : "";
    note.textContent = !complete && state.sort ? "(sorted within this page; narrow the search to sort all)" : "";
    prev.disabled = state.page === 0;
    next.disabled = !moreAfter;
    table.dataset.state = "ready";
    if (total === null && !Object.keys(filters(state)).length) {
      // unfiltered and large: the total is the archive's study count
      api.stats().then((s) => {
        if (rows.length) info.textContent = `${(offset + 1).toLocaleString()}–${last.toLocaleString()} of ${s.studies.toLocaleString()}`;
      }).catch(() => {});
    }
  }

  function row(s) {
    const href = `#/study/${enc(s.study_uid)}`;
    return h("tr.clickable", {
      dataset: { study: s.study_uid }, tabIndex: 0,
      onclick: (e) => { if (!e.target.closest("a")) location.hash = href; },
      onkeydown: (e) => { if (e.key === "Enter") location.hash = href; } },
    h("td", s.patient_id ? h("a.patient-link", { href: `#/patient/${enc(s.patient_id)}`, title: "All studies of this patient" },
      personName(s.patient_name) || "(no name)") : personName(s.patient_name) || "(no name)"),
    h("td", s.patient_id || ""),
    h("td.nowrap", date(s.birth_date)),
    h("td.nowrap", date(s.study_date)),
    h("td", h("a", { href }, s.description || "(no description)")),
    h("td", list(s.modalities)),
    h("td", s.accession || ""),
    h("td.num", s.series ?? ""),
    h("td.num", s.instances ?? ""));
  }

  await show();
  const first = form.querySelector("input");
  if (first && !state.name) first.focus();
  return () => controller && controller.abort();
}
