// Upload: files or folders dropped or chosen, sent with STOW-RS (POST /dicom-web/studies)
// in batches, with a progress bar; the studies they went into are listed at the end.

import { stow } from "./api.js";
import { bytes, clear, enc, errorToast, h, progressBar } from "./util.js";

const BATCH_BYTES = 32 * 1024 * 1024;
const BATCH_FILES = 50;

function batches(files) {
  const out = [];
  let current = [];
  let size = 0;
  for (const f of files) {
    if (current.length && (size + f.size > BATCH_BYTES || current.length >= BATCH_FILES)) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(f);
    size += f.size;
  }
  if (current.length) out.push(current);
  return out;
}

// Files of a drop, folders walked (webkitGetAsEntry works in Chromium, Firefox and Safari).
async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files];
  const out = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      out.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  for (const e of entries) await walk(e);
  return out;
}

function studyOf(url) {
  const m = /\/studies\/([^/]+)/.exec(url || "");
  return m ? decodeURIComponent(m[1]) : null;
}

export async function render(main) {
  const progress = h("div.upload-progress");
  const results = h("div.upload-results");
  const fileInput = h("input", { type: "file", multiple: true, name: "files", hidden: true,
    onchange: () => { upload([...fileInput.files]); fileInput.value = ""; } });
  const dirInput = h("input", { type: "file", multiple: true, webkitdirectory: true, hidden: true,
    onchange: () => { upload([...dirInput.files]); dirInput.value = ""; } });
  let busy = false;
  const zone = h("div.dropzone", { tabIndex: 0, role: "button", "aria-label": "Drop DICOM files here or choose them",
    onclick: (e) => { if (!e.target.closest("button")) fileInput.click(); },
    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fileInput.click(); } },
    ondragover: (e) => { e.preventDefault(); zone.classList.add("over"); },
    ondragleave: () => zone.classList.remove("over"),
    ondrop: async (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      try { upload(await droppedFiles(e.dataTransfer)); } catch (err) { errorToast(err); }
    } },
  h("div.dropzone-title", "Drop DICOM files or folders here"),
  h("div.muted", "or"),
  h("div", h("button.btn.primary", { type: "button", onclick: () => fileInput.click() }, "Choose files…"), " ",
    h("button.btn", { type: "button", onclick: () => dirInput.click() }, "Choose a folder…")));

  async function upload(files) {
    files = files.filter((f) => f.size > 0 && f.name !== "DICOMDIR" && !f.name.startsWith("."));
    if (!files.length || busy) return;
    busy = true;
    zone.classList.add("busy");
    const total = files.reduce((a, f) => a + f.size, 0);
    let sentBefore = 0;
    let stored = 0;
    const failed = [];
    const studies = new Map();
    const show = (sent, label) => clear(progress, progressBar(total ? sent / total : 1, label),
      h("div.small.muted", `${stored} stored${failed.length ? `, ${failed.length} failed` : ""} · ${bytes(sent)} of ${bytes(total)}`));
    show(0, `0 of ${files.length} files`);
    let done = 0;
    for (const batch of batches(files)) {
      const batchBytes = batch.reduce((a, f) => a + f.size, 0);
      try {
        const answer = await stow(batch, (loaded, all) => {
          const sent = sentBefore + (all ? loaded / all : 0) * batchBytes;
          show(sent, `${done} of ${files.length} files`);
        });
        const body = answer.body || {};
        const referenced = (body["00081199"] && body["00081199"].Value) || [];
        const failures = (body["00081198"] && body["00081198"].Value) || [];
        stored += referenced.length;
        for (const r of referenced) {
          const url = r["00081190"] && r["00081190"].Value && r["00081190"].Value[0];
          const uid = studyOf(url);
          if (uid) studies.set(uid, (studies.get(uid) || 0) + 1);
        }
        for (const f of failures) {
          const reason = f["00081197"] && f["00081197"].Value ? f["00081197"].Value[0] : "?";
          const sop = f["00081155"] && f["00081155"].Value ? f["00081155"].Value[0] : "";
          failed.push(`${sop || "a file that is not DICOM"}: failure reason ${Number(reason).toString(16).toUpperCase()}H`);
        }
        // parts the server could not read at all come back without an instance UID
        const unaccounted = batch.length - referenced.length - failures.length;
        for (let i = 0; i < unaccounted; i++) failed.push("not stored");
      } catch (err) {
        for (const f of batch) failed.push(`${f.name}: ${err.message}`);
      }
      sentBefore += batchBytes;
      done += batch.length;
      show(sentBefore, `${done} of ${files.length} files`);
    }
    show(total, `Done: ${stored} of ${files.length} files stored`);
    clear(results,
      studies.size ? h("div", h("h2", "Stored into"), h("ul.study-links", [...studies].map(([uid, n]) =>
        h("li", h("a", { href: `#/study/${enc(uid)}` }, uid), ` — ${n} instance${n === 1 ? "" : "s"}`)))) : null,
      failed.length ? h("details.failures", { open: failed.length <= 10 }, h("summary", `${failed.length} not stored`),
        h("ul", failed.slice(0, 500).map((f) => h("li.small", f)))) : null);
    busy = false;
    zone.classList.remove("busy");
  }

  main.append(h("div.page",
    h("div.page-head", h("h1", "Upload"), h("span.spacer"), h("a.btn", { href: "#/studies" }, "Studies")),
    h("p.muted", "DICOM Part-10 files are stored with STOW-RS exactly as they are, like images sent with C-STORE."),
    zone, fileInput, dirInput, progress, results));
}
