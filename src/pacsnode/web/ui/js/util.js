// Small helpers shared by the screens: DOM building, formatting, DICOM JSON values,
// toasts and the confirmation dialog.

// h("div.card#id", {onclick, title, ...}, child, [children], "text")
export function h(spec, attrs, ...children) {
  const [, tag = "div", rest = ""] = /^([a-z0-9-]*)(.*)$/i.exec(spec);
  const el = document.createElement(tag || "div");
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// DICOM JSON (PS3.18 F.2) values
export function values(ds, tag) {
  const attr = ds && ds[tag];
  return (attr && attr.Value) || [];
}
export function first(ds, tag, fallback = undefined) {
  const v = values(ds, tag);
  return v.length ? v[0] : fallback;
}
export function num(ds, tag, fallback = undefined) {
  const v = first(ds, tag);
  const n = typeof v === "number" ? v : parseFloat(v);
  return Number.isFinite(n) ? n : fallback;
}
export function nums(ds, tag) {
  return values(ds, tag).map((v) => (typeof v === "number" ? v : parseFloat(v)))
    .filter((n) => Number.isFinite(n));
}
export function str(ds, tag) {
  const v = first(ds, tag);
  if (v === undefined || v === null) return "";
  if (typeof v === "object") return personName(v.Alphabetic || "");
  return String(v);
}

// DOE^JOHN^^DR → "DOE, JOHN DR"
export function personName(name) {
  if (!name) return "";
  const text = typeof name === "object" ? (name.Alphabetic || "") : String(name);
  const [family = "", given = "", middle = "", prefix = "", suffix = ""] =
    text.split("=")[0].split("^");
  const rest = [prefix, given, middle, suffix].filter(Boolean).join(" ");
  return family && rest ? `${family}, ${rest}` : family || rest;
}

// 20240131 → 2024-01-31
export function date(da) {
  if (!da) return "";
  const s = String(da);
  return /^\d{8}$/.test(s) ? `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}` : s;
}
export function time(tm) {
  if (!tm) return "";
  const s = String(tm);
  return /^\d{4}/.test(s) ? `${s.slice(0, 2)}:${s.slice(2, 4)}` : s;
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function count(n, word) {
  const v = Number(n || 0);
  return `${v.toLocaleString()} ${word}${v === 1 ? "" : "s"}`;
}

export function list(v) {
  return Array.isArray(v) ? v.join(", ") : (v ?? "");
}

export function toast(message, kind = "info", ms = 5000) {
  const box = document.getElementById("toasts");
  const el = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status" }, message);
  box.append(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

export function errorToast(error) {
  if (error && error.name === "AbortError") return;
  toast(error && error.message ? error.message : String(error), "error", 8000);
}

// A modal dialog; resolves true when confirmed.
export function confirmDialog(title, message, { action = "Delete", danger = true } = {}) {
  return new Promise((resolve) => {
    const close = (answer) => { overlay.remove(); document.removeEventListener("keydown", key); resolve(answer); };
    const key = (e) => { if (e.key === "Escape") close(false); };
    const ok = h(`button.btn${danger ? ".danger" : ".primary"}`, { onclick: () => close(true) }, action);
    const overlay = h("div.modal-overlay", { onclick: (e) => { if (e.target === overlay) close(false); } },
      h("div.modal", { role: "dialog", "aria-modal": "true", "aria-label": title },
        h("h2", title), h("p", message),
        h("div.modal-actions",
          h("button.btn", { onclick: () => close(false) }, "Cancel"), ok)));
    document.body.append(overlay);
    document.addEventListener("keydown", key);
    ok.focus();
  });
}

export function modal(title, content, { onClose } = {}) {
  const close = () => { overlay.remove(); document.removeEventListener("keydown", key); onClose && onClose(); };
  const key = (e) => { if (e.key === "Escape") close(); };
  const overlay = h("div.modal-overlay", { onclick: (e) => { if (e.target === overlay) close(); } },
    h("div.modal", { role: "dialog", "aria-modal": "true", "aria-label": title },
      h("div.modal-head", h("h2", title), h("button.btn.icon", { onclick: close, title: "Close", "aria-label": "Close" }, "×")),
      content));
  document.body.append(overlay);
  document.addEventListener("keydown", key);
  return { close, element: overlay };
}

export function progressBar(fraction, label) {
  const pct = Math.max(0, Math.min(100, Math.round((fraction || 0) * 100)));
  return h("div.progress", { role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 },
    h("div.progress-fill", { style: { width: `${pct}%` } }),
    h("span.progress-label", label ?? `${pct}%`));
}

export function debounce(fn, ms) {
  let timer = null;
  const call = (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  call.cancel = () => clearTimeout(timer);
  return call;
}

export function parseHashQuery(text) {
  return Object.fromEntries(new URLSearchParams(text || ""));
}

export const enc = encodeURIComponent;
