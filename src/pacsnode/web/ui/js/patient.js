// A patient and its studies (/api/patients/{id}).

import { api } from "./api.js";
import { confirmDialog, date, enc, errorToast, h, list, personName, toast } from "./util.js";

export async function render(main, [patientId]) {
  const p = await api.patient(patientId || "");
  const studies = [...(p.studies || [])].sort((a, b) => String(b.study_date || "").localeCompare(String(a.study_date || "")));
  const remove = async () => {
    const ok = await confirmDialog("Delete patient",
      `Delete patient ${personName(p.patient_name)} (${p.patient_id}) with ${p.studies?.length === 1 ? "1 study" : `${p.studies?.length ?? 0} studies`} and all their images? This cannot be undone.`);
    if (!ok) return;
    try {
      await api.remove("patients", p.patient_id);
      toast("Patient deleted", "ok");
      location.hash = "#/studies";
    } catch (e) { errorToast(e); }
  };
  main.append(h("div.page",
    h("nav.crumbs", h("a", { href: "#/studies" }, "Studies"), " › ", personName(p.patient_name) || p.patient_id),
    h("div.page-head",
      h("div", h("h1", personName(p.patient_name) || "(no name)"),
        h("p.muted", `ID ${p.patient_id || "—"} · born ${date(p.birth_date) || "—"} · sex ${p.sex || "—"} · `,
          `${p.studies?.length ?? 0} studies, ${p.series ?? "?"} series, ${p.instances ?? "?"} instances`)),
      h("span.spacer"),
      h("button.btn.danger", { onclick: remove }, "Delete patient…")),
    h("div.table-wrap", h("table.list",
      h("thead", h("tr", ["Study date", "Description", "Modalities", "Accession", "Series", "Instances"].map((t) => h("th", t)))),
      h("tbody", studies.map((s) => h("tr.clickable", {
        onclick: () => { location.hash = `#/study/${enc(s.study_uid)}`; } },
      h("td", date(s.study_date)),
      h("td", h("a", { href: `#/study/${enc(s.study_uid)}` }, s.description || "(no description)")),
      h("td", list(s.modalities)), h("td", s.accession || ""),
      h("td.num", s.series ?? ""), h("td.num", s.instances ?? ""))))))));
}
