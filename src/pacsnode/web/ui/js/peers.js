// Peers: the DICOM nodes pacsnode sends to (TOML and index peers), add, echo, remove.

import { api } from "./api.js";
import { clear, confirmDialog, errorToast, h, toast } from "./util.js";

export async function render(main) {
  const body = h("tbody");
  const field = (name, label, attrs = {}) => h("label", label, h("input", { name, required: true, autocomplete: "off", ...attrs }));
  const form = h("form.inline-form", {
    onsubmit: async (e) => {
      e.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      try {
        await api.addPeer({ name: data.name.trim(), aet: data.aet.trim(), host: data.host.trim(), port: Number(data.port) });
        toast(`Peer ${data.name} added`, "ok");
        form.reset();
        await load();
      } catch (err) { errorToast(err); }
    } },
  field("name", "Name", { placeholder: "WS1", maxLength: 64 }),
  field("aet", "AE title", { placeholder: "STORESCP", maxLength: 16, pattern: "[ -~]{1,16}" }),
  field("host", "Host", { placeholder: "10.0.0.9" }),
  field("port", "Port", { type: "number", min: 1, max: 65535, value: 104 }),
  h("button.btn.primary", { type: "submit" }, "Add peer"));

  async function echo(peer, cell) {
    clear(cell, h("span.muted", "echoing…"));
    try {
      const r = await api.echo(peer.name);
      clear(cell, r.ok ? h("span.ok", `✓ ${Math.round(r.milliseconds ?? 0)} ms`) : h("span.error", `✗ ${r.detail || "failed"}`));
    } catch (err) { clear(cell, h("span.error", `✗ ${err.message}`)); }
  }

  async function remove(peer) {
    if (!await confirmDialog("Remove peer", `Remove the peer ${peer.name} (${peer.aet}@${peer.host}:${peer.port})?`, { action: "Remove" })) return;
    try {
      await api.removePeer(peer.name);
      toast(`Peer ${peer.name} removed`, "ok");
      await load();
    } catch (err) { errorToast(err); }
  }

  async function load() {
    const peers = await api.peers();
    clear(body, peers.length ? peers.map((p) => {
      const result = h("td.echo-result");
      return h("tr", { dataset: { peer: p.name } },
        h("td", h("strong", p.name)), h("td.mono", p.aet), h("td", p.host), h("td.num", p.port),
        h("td", p.source === "config" ? h("span.badge", { title: "Declared in the TOML configuration file" }, "config") : h("span.badge.soft", "index"),
          p.shadowed ? h("span.badge.warn", { title: "Hidden by a TOML peer of the same name" }, "shadowed") : null),
        h("td.nowrap", h("button.btn.small", { onclick: () => echo(p, result) }, "Echo"), " ",
          p.source === "config" ? null : h("button.btn.small.danger", { onclick: () => remove(p) }, "Remove")),
        result);
    }) : h("tr", h("td.empty", { colSpan: 7 }, "No peers yet.")));
  }

  main.append(h("div.page",
    h("div.page-head", h("h1", "Peers")),
    h("p.muted", "DICOM nodes pacsnode can send studies to (C-STORE) and that may be C-MOVE destinations."),
    h("div.table-wrap", h("table.list", h("thead", h("tr", ["Name", "AE title", "Host", "Port", "Source", "", "Echo"].map((t) => h("th", t)))), body)),
    h("h2", "Add a peer"), form));
  try { await load(); } catch (err) { errorToast(err); }
}
