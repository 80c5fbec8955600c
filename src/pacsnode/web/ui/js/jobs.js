// Send jobs: the "send to a peer" dialog with its progress, and a job's progress bar.

import { api } from "./api.js";
import { clear, errorToast, h, modal, progressBar } from "./util.js";

export const FINISHED = new Set(["completed", "failed", "cancelled"]);

export function jobProgress(job) {
  const p = job.progress || {};
  const done = (p.completed || 0) + (p.failed || 0) + (p.warning || 0);
  const fraction = p.total ? done / p.total : (job.state === "completed" ? 1 : 0);
  return h(`div.job.state-${job.state}`, { dataset: { job: job.id, state: job.state } },
    progressBar(fraction, `${job.state} · ${done}/${p.total ?? "?"}${p.failed ? ` · ${p.failed} failed` : ""}`),
    job.last_error ? h("div.small.error", job.last_error) : null);
}

// Polls a job until it ends; onUpdate(job) on every answer.
export function followJob(id, onUpdate, interval = 700) {
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    try {
      const job = await api.job(id);
      onUpdate(job);
      if (FINISHED.has(job.state)) return;
    } catch (e) { errorToast(e); return; }
    setTimeout(tick, interval);
  };
  tick();
  return () => { stopped = true; };
}

export async function sendDialog(studyUid, label) {
  let stop = null;
  const body = h("div.send-dialog");
  const dialog = modal(`Send ${label}`, body, { onClose: () => stop && stop() });
  let peers;
  try {
    peers = await api.peers();
  } catch (e) { errorToast(e); dialog.close(); return; }
  if (!peers.length) {
    clear(body, h("p", "No peer is declared. Add one on the ", h("a", { href: "#/peers", onclick: () => dialog.close() }, "Peers"), " page."));
    return;
  }
  const select = h("select", { name: "peer" }, peers.map((p) => h("option", { value: p.name }, `${p.name} — ${p.aet}@${p.host}:${p.port}`)));
  const status = h("div.job-status");
  const go = h("button.btn.primary", { type: "submit" }, "Send");
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      go.disabled = true;
      try {
        const job = await api.send(studyUid, select.value);
        clear(status, jobProgress(job));
        stop = followJob(job.id, (j) => {
          clear(status, jobProgress(j), FINISHED.has(j.state)
            ? h("p.small", j.state === "completed" ? "Sent." : `Job ${j.state}.`, " ", h("a", { href: "#/status", onclick: () => dialog.close() }, "All jobs")) : null);
          if (FINISHED.has(j.state)) go.disabled = false;
        });
      } catch (err) { errorToast(err); go.disabled = false; }
    } },
  h("label", "Peer", select), h("div.modal-actions", go));
  clear(body, form, status);
}
