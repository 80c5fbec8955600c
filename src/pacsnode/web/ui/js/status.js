// Server status: counts and storage (/api/stats), the studies stored last, and the jobs
// (/api/jobs) with their progress; refreshed every few seconds while shown.

import { api } from "./api.js";
import { jobProgress } from "./jobs.js";
import { bytes, clear, date, enc, errorToast, h, list, personName } from "./util.js";

const REFRESH_MS = 3000;

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso.endsWith("Z") || iso.includes("+") ? iso : `${iso}Z`);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export async function render(main) {
  const cards = h("div.cards");
  const recent = h("tbody");
  const jobs = h("tbody");
  main.append(h("div.page",
    h("div.page-head", h("h1", "Status")),
    cards,
    h("div.two-columns",
      h("section", h("h2", "Stored last"), h("div.table-wrap", h("table.list",
        h("thead", h("tr", ["Patient", "Study date", "Description", "Modalities", "Instances"].map((t) => h("th", t)))), recent))),
      h("section", h("h2", "Jobs"), h("div.table-wrap", h("table.list.jobs",
        h("thead", h("tr", ["#", "Study", "Peer", "Created", "Progress", ""].map((t) => h("th", t)))), jobs))))));

  let lastStudies = -1;
  async function refresh() {
    const [stats, jobList] = await Promise.all([api.stats(), api.jobs({ limit: 20 })]);
    const used = stats.disk_total_bytes ? 1 - stats.disk_free_bytes / stats.disk_total_bytes : 0;
    const card = (label, value, extra) => h("div.card", h("div.card-value", value), h("div.card-label", label), extra);
    clear(cards,
      card("patients", stats.patients.toLocaleString()), card("studies", stats.studies.toLocaleString()),
      card("series", stats.series.toLocaleString()), card("instances", stats.instances.toLocaleString()),
      card("stored", bytes(stats.stored_bytes)),
      card("disk free", bytes(stats.disk_free_bytes), h("div.meter", { title: `${Math.round(used * 100)}% of ${bytes(stats.disk_total_bytes)} used` },
        h("div.meter-fill", { style: { width: `${Math.round(used * 100)}%` } }))));
    if (stats.studies !== lastStudies) {
      lastStudies = stats.studies;
      // studies are listed in the order they were first stored: the last page is the newest
      const page = await api.studies({ limit: 10, offset: Math.max(0, stats.studies - 10) });
      const items = [...page.items].reverse();
      clear(recent, items.length ? items.map((s) => h("tr.clickable", { onclick: () => { location.hash = `#/study/${enc(s.study_uid)}`; } },
        h("td", personName(s.patient_name)), h("td.nowrap", date(s.study_date)), h("td", s.description || ""),
        h("td", list(s.modalities)), h("td.num", s.instances))) : h("tr", h("td.empty", { colSpan: 5 }, "Nothing stored yet.")));
    }
    clear(jobs, jobList.items.length ? jobList.items.map((j) => h("tr", { dataset: { job: j.id } },
      h("td.num", j.id), h("td", h("a.mono.small", { href: `#/study/${enc(j.study_instance_uid)}`, title: j.study_instance_uid }, `…${j.study_instance_uid.slice(-12)}`)),
      h("td", j.peer), h("td.small.nowrap", when(j.created_at)), h("td", jobProgress(j)),
      h("td", ["queued", "running"].includes(j.state)
        ? h("button.btn.small", { onclick: () => api.cancelJob(j.id).then(refresh, errorToast) }, "Cancel") : null)))
      : h("tr", h("td.empty", { colSpan: 6 }, "No jobs.")));
  }

  let timer = null;
  let stopped = false;
  const loop = async () => {
    try { await refresh(); } catch (e) { errorToast(e); }
    if (!stopped) timer = setTimeout(loop, REFRESH_MS);
  };
  await loop();
  return () => { stopped = true; clearTimeout(timer); };
}
