// Modality Worklist: scheduled procedure steps (/api/worklist), add, cancel, remove.

import { api } from "./api.js";
import { clear, confirmDialog, date, errorToast, h, personName, time, toast } from "./util.js";

const STATES = [["", "Scheduled and in progress"], ["all", "All"], ["SCHEDULED", "Scheduled"], ["IN PROGRESS", "In progress"],
  ["COMPLETED", "Completed"], ["DISCONTINUED", "Discontinued"], ["CANCELLED", "Cancelled"]];

function pad(n) { return String(n).padStart(2, "0"); }

export async function render(main) {
  const body = h("tbody");
  let state = "";
  const stateSelect = h("select", { "aria-label": "State", onchange: (e) => { state = e.target.value; load(); } },
    STATES.map(([v, l]) => h("option", { value: v }, l)));
  const search = h("input", { type: "search", placeholder: "Patient name (wildcards)", "aria-label": "Patient name",
    oninput: () => { clearTimeout(search.timer); search.timer = setTimeout(load, 300); } });

  const now = new Date();
  const start = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T${pad(now.getHours() + 1 > 23 ? 23 : now.getHours() + 1)}:00`;
  const field = (name, label, attrs = {}) => h("label", label, h("input", { name, autocomplete: "off", ...attrs }));
  const form = h("form.grid-form", {
    onsubmit: async (e) => {
      e.preventDefault();
      const d = Object.fromEntries(new FormData(form));
      const item = {
        patient_name: d.patient_name.trim().toUpperCase().replace(/,\s*/, "^"), patient_id: d.patient_id.trim(),
        modality: d.modality.trim().toUpperCase(), station_aet: d.station_aet.trim(),
        start: d.start.replace(/[-:T]/g, "").slice(0, 12),
        birth_date: (d.birth_date || "").replaceAll("-", ""), sex: d.sex || "", accession: d.accession.trim(),
        procedure: d.procedure.trim(),
      };
      try {
        const created = await api.addWorklist(item);
        toast(`Worklist item ${created.id ?? ""} added`, "ok");
        form.reset();
        await load();
      } catch (err) { errorToast(err); }
    } },
  field("patient_name", "Patient name", { required: true, placeholder: "DOE^JOHN" }),
  field("patient_id", "Patient ID", { required: true }),
  field("birth_date", "Birth date", { type: "date" }),
  h("label", "Sex", h("select", { name: "sex" }, ["", "F", "M", "O"].map((s) => h("option", { value: s }, s || "—")))),
  field("modality", "Modality", { required: true, placeholder: "CT", maxLength: 16 }),
  field("station_aet", "Station AE title", { required: true, placeholder: "CT01", maxLength: 16 }),
  field("start", "Scheduled start", { type: "datetime-local", required: true, value: start }),
  field("accession", "Accession", { maxLength: 16 }),
  field("procedure", "Procedure", { placeholder: "CT HEAD" }),
  h("div.form-actions", h("button.btn.primary", { type: "submit" }, "Add to worklist")));

  async function setState(item, newState) {
    try {
      await api.setWorklistState(item.id, newState);
      toast(`Item ${item.id}: ${newState.toLowerCase()}`, "ok");
      await load();
    } catch (err) { errorToast(err); }
  }
  async function remove(item) {
    if (!await confirmDialog("Remove worklist item", `Remove the item of ${personName(item.patient_name)} (${item.procedure || item.modality})?`, { action: "Remove" })) return;
    try {
      await api.removeWorklist(item.id);
      await load();
    } catch (err) { errorToast(err); }
  }

  async function load() {
    let answer;
    try {
      const name = search.value.trim();
      answer = await api.worklist({ state: state || undefined, PatientName: name ? (/[*?]/.test(name) ? name : `${name}*`) : undefined, limit: 200 });
    } catch (err) { errorToast(err); return; }
    const items = answer.items || [];
    clear(body, items.length ? items.map((i) => h("tr", { dataset: { item: i.id } },
      h("td.nowrap", `${date(i.start_date)} ${time(i.start_time)}`),
      h("td", personName(i.patient_name)), h("td", i.patient_id), h("td", i.modality), h("td.mono", i.station_aet),
      h("td", i.accession), h("td", i.procedure),
      h("td", h("span", { class: `badge state-${(i.state || "").replace(" ", "-").toLowerCase()}` }, i.state)),
      h("td.nowrap", i.state === "SCHEDULED" ? h("button.btn.small", { onclick: () => setState(i, "CANCELLED") }, "Cancel") : null, " ",
        h("button.btn.small.danger", { onclick: () => remove(i) }, "Remove"))))
      : h("tr", h("td.empty", { colSpan: 9 }, "No worklist items.")));
  }

  main.append(h("div.page",
    h("div.page-head", h("h1", "Worklist"), h("span.spacer"), search, stateSelect),
    h("div.table-wrap", h("table.list", h("thead", h("tr", ["Start", "Patient", "Patient ID", "Modality", "Station", "Accession", "Procedure", "State", ""].map((t) => h("th", t)))), body)),
    h("h2", "Add a worklist item"), form));
  await load();
}
