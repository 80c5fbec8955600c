// The DICOM tag browser of one instance: its WADO-RS metadata (DICOM JSON) as a table,
// sequences expandable, private tags marked, filterable by tag, name or value.

import { api, instanceMetadata } from "./api.js";
import { enc, h, personName } from "./util.js";

let dictionary = null;
async function names() {
  if (!dictionary) {
    dictionary = fetch("/ui/dictionary.json").then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  }
  return dictionary;
}

function tagText(tag) {
  return `(${tag.slice(0, 4)},${tag.slice(4)})`;
}

function isPrivate(tag) {
  return parseInt(tag.slice(0, 4), 16) % 2 === 1;
}

function nameOf(tag, dict, ds) {
  if (dict[tag]) return dict[tag];
  if (isPrivate(tag)) {
    const element = parseInt(tag.slice(4), 16);
    if (element >= 0x10 && element <= 0xff) return "Private Creator";
    const creatorTag = `${tag.slice(0, 4)}00${tag.slice(4, 6)}`;
    const creator = ds[creatorTag] && ds[creatorTag].Value && ds[creatorTag].Value[0];
    return creator ? `Private (${creator})` : "Private tag";
  }
  if (tag.endsWith("0000")) return "Group Length";
  return "Unknown";
}

function valueText(attr) {
  if (attr.BulkDataURI) return null;
  if (attr.InlineBinary) return `[binary, ${Math.floor(attr.InlineBinary.length * 3 / 4)} bytes]`;
  const v = attr.Value;
  if (!v || !v.length) return "";
  if (attr.vr === "PN") return v.map((p) => (p && p.Alphabetic) || "").map((p) => `${p}${p ? ` (${personName(p)})` : ""}`).join(" \\ ");
  return v.map((x) => (x === null ? "" : typeof x === "object" ? JSON.stringify(x) : String(x))).join(" \\ ");
}

function rows(ds, dict, depth, out, parentId) {
  for (const tag of Object.keys(ds).sort()) {
    const attr = ds[tag];
    const id = `${parentId}/${tag}`;
    const priv = isPrivate(tag);
    const cls = `tag-row depth-${Math.min(depth, 6)}${priv ? " private" : ""}`;
    const indent = { paddingLeft: `${0.4 + depth * 1.2}rem` };
    if (attr.vr === "SQ") {
      const items = attr.Value || [];
      const toggle = h("button.toggle", { "aria-expanded": "false", title: "Expand or collapse" }, "▸");
      const row = h("tr", { class: `${cls} sequence`, dataset: { id, tag, parent: parentId } },
        h("td.mono", { style: indent }, toggle, " ", tagText(tag)), h("td", nameOf(tag, dict, ds)), h("td.mono", "SQ"),
        h("td.muted", `${items.length} item${items.length === 1 ? "" : "s"}`));
      out.push(row);
      const children = [];
      items.forEach((item, n) => {
        const itemId = `${id}[${n}]`;
        children.push(h("tr", { class: `tag-row item depth-${Math.min(depth + 1, 6)}`, dataset: { id: itemId, parent: id } },
          h("td.mono", { style: { paddingLeft: `${0.4 + (depth + 1) * 1.2}rem` }, colSpan: 4 }, `Item ${n + 1}`)));
        rows(item, dict, depth + 2, children, itemId);
      });
      for (const c of children) c.hidden = true;
      toggle.addEventListener("click", () => {
        const open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(open));
        toggle.textContent = open ? "▾" : "▸";
        // closing hides everything below; opening shows the rows whose sequences are open
        for (const c of children) c.hidden = !open || !isVisible(c, children, id);
      });
      out.push(...children);
      continue;
    }
    const text = valueText(attr);
    out.push(h("tr", { class: cls, dataset: { id, tag, parent: parentId } },
      h("td.mono", { style: indent }, tagText(tag)), h("td", nameOf(tag, dict, ds)), h("td.mono", attr.vr || ""),
      h("td.value", text === null ? h("a", { href: attr.BulkDataURI, target: "_blank", rel: "noopener" }, "bulk data") : text)));
  }
  return out;
}

// A row deep inside open sequences is visible when every sequence above it is open.
function isVisible(row, all, rootId) {
  let parent = row.dataset.parent;
  while (parent && parent !== rootId) {
    const seqId = parent.replace(/\[\d+\]$/, "");
    const seq = all.find((r) => r.dataset.id === seqId);
    if (seq && seq.querySelector(".toggle")?.getAttribute("aria-expanded") !== "true") return false;
    parent = seq ? seq.dataset.parent : null;
  }
  return true;
}

export async function render(main, [study, series, instance]) {
  const [ds, dict, st] = await Promise.all([instanceMetadata(study, series, instance), names(), api.study(study).catch(() => null)]);
  const all = rows(ds, dict, 0, [], "");
  const body = h("tbody", all);
  const filter = h("input", { type: "search", placeholder: "Filter by tag, name or value", "aria-label": "Filter tags",
    oninput: () => {
      const q = filter.value.trim().toLowerCase();
      for (const r of all) {
        if (!q) { r.hidden = !isVisible(r, all, ""); continue; }
        r.hidden = !r.textContent.toLowerCase().includes(q);
      }
    } });
  const privateOnly = h("input", { type: "checkbox", onchange: () => body.classList.toggle("private-only", privateOnly.checked) });
  main.append(h("div.page",
    h("nav.crumbs", h("a", { href: "#/studies" }, "Studies"), " › ",
      h("a", { href: `#/study/${enc(study)}` }, st ? (st.description || "study") : "study"), " › ",
      h("a", { href: `#/series/${enc(study)}/${enc(series)}` }, "series"), " › tags"),
    h("div.page-head", h("h1", "DICOM tags"), h("span.spacer"),
      h("a.btn", { href: `#/viewer/${enc(study)}/${enc(series)}?instance=${enc(instance)}` }, "View image")),
    h("p.muted.small.mono", instance),
    h("div.filters", filter, h("label.small", privateOnly, " private tags only"),
      h("button.btn.small", { onclick: () => { for (const t of body.querySelectorAll(".toggle[aria-expanded='false']")) t.click(); } }, "Expand all")),
    h("div.table-wrap", h("table.list.tags", h("thead", h("tr", ["Tag", "Name", "VR", "Value"].map((t) => h("th", t)))), body))));
}
