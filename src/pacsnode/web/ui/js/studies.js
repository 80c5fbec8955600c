// The study list: search (name with wildcards, ID, date range, modality, accession),
// sorted and paged by the server: each page is one /api/studies request with the filters,
// sort, limit and offset; the total (count=true) is asked for once per search.

import { api } from "./api.js";
import { clear, date, debounce, enc, errorToast, h, list, personName } from "./util.js";

const PAGE_SIZES = [25, 50, 100];
const MAX_PAGE = 1000; // the API's largest limit
const MODALITIES = ["", "CT", "MR", "CR", "DX", "US", "NM", "PT", "XA", "MG", "RF", "OT", "SC", "SR"];
const COLUMNS = [
  ["patient_name", "Patient name"], ["patient_id", "Patient ID"], ["birth_date", "Birth date"],
  ["study_date", "Study date"], ["description", "Description"], ["modalities", "Modalities"],
  ["accession", "Accession"], ["series", "Series"], ["instances", "Instances"],
];
const NUMERIC = new Set(["series", "instances"]);
// column → the /api/studies sort keys it stands for (index columns, see docs/conformance.md §12)
const SORT_KEYS = {
  patient_name: ["PatientName"], patient_id: ["PatientID"], birth_date: ["PatientBirthDate"],
  study_date: ["StudyDate", "StudyTime"], description: ["StudyDescription"],
  modalities: ["ModalitiesInStudy"], accession: ["AccessionNumber"],
  series: ["NumberOfStudyRelatedSeries"], instances: ["NumberOfStudyRelatedInstances"],
};

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

// The page size of the URL: one of the menu's, or any other from 1 to MAX_PAGE.
function pageSize(text) {
  const n = Number(text);
  return Number.isInteger(n) && n >= 1 && n <= MAX_PAGE ? n : PAGE_SIZES[0];
}

// The API's sort parameter for a column and a direction (1 ascending, -1 descending).
export function sortParam(column, dir) {
  const keys = SORT_KEYS[column];
  if (!keys) return "";
  return keys.map((k) => (dir < 0 ? `-${k}` : k)).join(",");
}

export async function render(main, _args, query) {
  const state = {
    name: query.name || "", id: query.id || "", from: query.from || "", to: query.to || "",
    modality: query.modality || "", accession: query.accession || "",
    page: Math.max(0, Math.floor(Number(query.page)) || 0), size: pageSize(query.size),
    sort: SORT_KEYS[query.sort] ? query.sort : "", dir: query.dir === "desc" ? -1 : 1,
  };
  let counted = null; // {key, total}: the number of matches of the last search
  let controller = null;

  const input = (name, attrs) => h("input", {
    name, value: state[name], autocomplete: "off",
    oninput: (e) => { state[name] = e.target.value; state.page = 0; searchSoon(); }, ...attrs });
  const modality = h("select", {
    name: "modality", title: "Modality",
    onchange: (e) => { state.modality = e.target.value; state.page = 0; search(); } },
  MODALITIES.map((m) => h("option", { value: m, selected: m === state.modality }, m || "Any")));
  const size = h("select", {
    title: "Studies per page", onchange: (e) => { state.size = Number(e.target.value); state.page = 0; show(); } },
  [...new Set([...PAGE_SIZES, state.size])].sort((a, b) => a - b)
    .map((n) => h("option", { value: n, selected: n === state.size }, `${n} per page`)));

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
  main.append(h("div.page",
    h("div.page-head", h("h1", "Studies"), h("span.spacer"),
      h("a.btn", { href: "#/upload" }, "Upload…")),
    form,
    h("div.table-wrap", table),
    h("div.pager", info, h("span.spacer"), size, prev, next)));

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
    if (state.size !== PAGE_SIZES[0]) q.set("size", state.size);
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
        state.page = 0;
        show();
      } }, label)));
  }

  // One page from the server, the total counted only when the filters changed.
  async function load(offset) {
    const key = JSON.stringify(filters(state));
    const count = !counted || counted.key !== key;
    if (controller) controller.abort();
    controller = new AbortController();
    const page = await api.studies({
      ...filters(state), sort: sortParam(state.sort, state.dir), limit: state.size, offset,
      count: count ? "true" : undefined,
    }, controller.signal);
    if (count) counted = { key, total: page.total };
    return page;
  }

  async function search() {
    counted = null;
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
    let page;
    try {
      page = await load(offset);
    } catch (error) {
      if (error.name === "AbortError") return; // a newer request replaced this one
      if (mine === shown) table.dataset.state = "error";
      errorToast(error);
      return;
    }
    if (mine !== shown) return; // a newer search is on its way
    const rows = page.items;
    const total = counted.total;
    if (!rows.length && state.page > 0) { // past the end (say the archive shrank)
      state.page = 0;
      counted = null;
      return show();
    }
    clear(body, rows.length ? rows.map(row) : h("tr", h("td.empty", { colSpan: COLUMNS.length },
      Object.keys(filters(state)).length ? "No study matches this search." : "No studies yet: upload some, or send them with C-STORE.")));
    const last = offset + rows.length;
    info.textContent = rows.length
      ? `${(offset + 1).toLocaleString()}–${last.toLocaleString()} of ${Math.max(total, last).toLocaleString()}`
      : "";
    prev.disabled = state.page === 0;
    next.disabled = !page.more;
    table.dataset.state = "ready";
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
