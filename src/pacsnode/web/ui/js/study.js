// A study: its patient and attributes, its series with thumbnails, and what to do with it
// (view, download as ZIP, send to a peer, delete the study or one series).

import { api, thumbnailUrl } from "./api.js";
import { sendDialog } from "./jobs.js";
import { confirmDialog, date, enc, errorToast, h, list, personName, str, time, toast } from "./util.js";

export function seriesOrder(a, b) {
  return (Number(a.number ?? 1e9) - Number(b.number ?? 1e9)) || String(a.series_uid).localeCompare(String(b.series_uid));
}

export async function render(main, [studyUid]) {
  const s = await api.study(studyUid);
  const attrs = s.attributes || {};
  const series = [...(s.series || [])].sort(seriesOrder);
  const label = `${personName(s.patient_name) || s.patient_id || "study"} — ${s.description || date(s.study_date) || "study"}`;

  const removeStudy = async () => {
    if (!await confirmDialog("Delete study",
      `Delete the study "${s.description || s.study_uid}" of ${personName(s.patient_name) || s.patient_id} (${series.length} series, ${s.instances} instances)? This cannot be undone.`)) return;
    try {
      await api.remove("studies", s.study_uid);
      toast("Study deleted", "ok");
      location.hash = "#/studies";
    } catch (e) { errorToast(e); }
  };
  const removeSeries = async (se, card) => {
    if (!await confirmDialog("Delete series",
      `Delete series ${se.number ?? ""} ${se.modality || ""} "${se.description || se.series_uid}" (${se.instances} instances)? This cannot be undone.`)) return;
    try {
      await api.remove("series", se.series_uid);
      card.remove();
      toast("Series deleted", "ok");
      if (!main.querySelector(".series-card")) location.hash = "#/studies";
    } catch (e) { errorToast(e); }
  };

  const fields = [
    ["Patient", personName(s.patient_name)], ["Patient ID", s.patient_id], ["Birth date", date(s.birth_date)],
    ["Sex", str(attrs, "00100040")], ["Study date", `${date(s.study_date)} ${time(s.study_time)}`],
    ["Accession", s.accession], ["Modalities", list(s.modalities)],
    ["Referring physician", str(attrs, "00080090")], ["Study ID", str(attrs, "00200010")],
    ["Study UID", s.study_uid],
  ];
  const viewer = series.length ? `#/viewer/${enc(s.study_uid)}/${enc(series[0].series_uid)}` : null;
  main.append(h("div.page",
    h("nav.crumbs", h("a", { href: "#/studies" }, "Studies"), " › ",
      h("a", { href: `#/patient/${enc(s.patient_id || "")}` }, personName(s.patient_name) || s.patient_id || "patient"),
      " › ", s.description || date(s.study_date) || "study"),
    h("div.page-head",
      h("h1", s.description || "(no description)"), h("span.spacer"),
      viewer ? h("a.btn.primary", { href: viewer }, "Open viewer") : null,
      h("a.btn", { href: api.archiveUrl(s.study_uid), download: `${s.patient_id || "study"}-${s.study_date || ""}.zip` }, "Download ZIP"),
      h("button.btn", { onclick: () => sendDialog(s.study_uid, label) }, "Send…"),
      h("button.btn.danger", { onclick: removeStudy }, "Delete study…")),
    h("dl.fields", fields.filter(([, v]) => v && String(v).trim()).map(([k, v]) => h("div", h("dt", k), h("dd", v)))),
    h("h2", `${series.length} series · ${s.instances ?? "?"} instances`),
    h("div.series-grid", series.map((se) => {
      const view = `#/viewer/${enc(s.study_uid)}/${enc(se.series_uid)}`;
      const card = h("div.series-card", { dataset: { series: se.series_uid } },
        h("a.thumb", { href: view, title: "Open in the viewer" },
          h("img", { src: thumbnailUrl(s.study_uid, se.series_uid), alt: `Series ${se.number ?? ""}`, loading: "lazy", width: 128, height: 128,
            onerror: (e) => { e.target.replaceWith(h("span.no-thumb", se.modality || "?")); } })),
        h("div.series-info",
          h("div.series-title", h("strong", `${se.number ?? "–"}`), ` ${se.modality || ""} `, se.description || ""),
          h("div.muted.small", `${se.instances} instance${se.instances === 1 ? "" : "s"}`),
          h("div.series-actions",
            h("a.btn.small", { href: view }, "View"),
            h("a.btn.small", { href: `#/series/${enc(s.study_uid)}/${enc(se.series_uid)}` }, "Instances"),
            h("button.btn.small.danger", { onclick: () => removeSeries(se, card), title: "Delete this series" }, "Delete…"))));
      return card;
    }))));
}
