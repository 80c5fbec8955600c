// A series' instances (/api/series/{uid}), each with its tags and a link into the viewer.

import { api } from "./api.js";
import { confirmDialog, enc, errorToast, h, personName, toast } from "./util.js";

export async function render(main, [studyUid, seriesUid]) {
  const [study, se] = await Promise.all([api.study(studyUid), api.series(seriesUid)]);
  const instances = [...(se.instances || [])].sort((a, b) =>
    (Number(a.number ?? 1e9) - Number(b.number ?? 1e9)) || String(a.sop_instance_uid).localeCompare(b.sop_instance_uid));
  const viewer = `#/viewer/${enc(studyUid)}/${enc(seriesUid)}`;
  const remove = async () => {
    if (!await confirmDialog("Delete series", `Delete series ${se.number ?? ""} "${se.description || se.series_uid}" (${se.instances} instances)? This cannot be undone.`)) return;
    try {
      await api.remove("series", seriesUid);
      toast("Series deleted", "ok");
      location.hash = `#/study/${enc(studyUid)}`;
    } catch (e) { errorToast(e); }
  };
  main.append(h("div.page",
    h("nav.crumbs", h("a", { href: "#/studies" }, "Studies"), " › ",
      h("a", { href: `#/patient/${enc(study.patient_id || "")}` }, personName(study.patient_name) || study.patient_id),
      " › ", h("a", { href: `#/study/${enc(studyUid)}` }, study.description || "study"),
      " › ", `Series ${se.number ?? ""} ${se.description || ""}`),
    h("div.page-head", h("h1", `Series ${se.number ?? ""} · ${se.modality || ""} · ${se.description || ""}`), h("span.spacer"),
      h("a.btn.primary", { href: viewer }, "Open viewer"),
      h("button.btn.danger", { onclick: remove }, "Delete series…")),
    h("p.muted.small", `Series UID ${seriesUid}`),
    h("div.table-wrap", h("table.list",
      h("thead", h("tr", ["#", "Size", "Frames", "SOP Instance UID", ""].map((t) => h("th", t)))),
      h("tbody", instances.map((i) => h("tr",
        h("td.num", i.number ?? ""),
        h("td", i.rows && i.columns ? `${i.columns}×${i.rows}` : "—"),
        h("td.num", i.frames ?? 1),
        h("td.mono.small", i.sop_instance_uid),
        h("td.nowrap",
          h("a.btn.small", { href: `${viewer}?instance=${enc(i.sop_instance_uid)}` }, "View"), " ",
          h("a.btn.small", { href: `#/tags/${enc(studyUid)}/${enc(seriesUid)}/${enc(i.sop_instance_uid)}` }, "Tags"), " ",
          h("a.btn.small", { href: wadoUri(studyUid, seriesUid, i.sop_instance_uid), download: `${i.sop_instance_uid}.dcm` }, "Download")))))))));
}

// WADO-URI (PS3.18 9) gives the Part-10 file as stored.
function wadoUri(study, series, instance) {
  const q = new URLSearchParams({ requestType: "WADO", studyUID: study, seriesUID: series, objectUID: instance,
    contentType: "application/dicom", transferSyntax: "*" });
  return `/wado?${q}`;
}

