// The image viewer: one series (or two side by side) drawn on canvases from WADO-RS frames.
// Slices are sorted by position along the slice normal (else by Instance Number; the
// frames of a multi-frame instance in order). Scroll (wheel, keys, slider), window/level
// (drag, presets), zoom and pan, fit / 1:1, invert, cine, overlay text. Frames are fetched
// around the current slice, a few at a time, into a cache bounded in bytes.

import { api, frameBytes, renderedFrame, seriesMetadata } from "./api.js";
import { decode, fullRange, grayLut, paintGray, pixelInfo } from "./pixels.js";
import { clear, date, enc, errorToast, h, num, nums, personName, str } from "./util.js";

const CACHE_BYTES = 384 * 1024 * 1024;
const CONCURRENCY = 4;
export const PRESETS = [
  ["default", "Window: default"],
  ["auto", "Full range"],
  ["brain", "Brain 40/80", { center: 40, width: 80 }],
  ["subdural", "Subdural 75/215", { center: 75, width: 215 }],
  ["lung", "Lung −600/1500", { center: -600, width: 1500 }],
  ["mediastinum", "Mediastinum 50/350", { center: 50, width: 350 }],
  ["abdomen", "Abdomen 60/400", { center: 60, width: 400 }],
  ["bone", "Bone 400/1800", { center: 400, width: 1800 }],
];

// --- a frame cache shared by the viewports, least recently used out first ---------------
class FrameCache {
  constructor(limit) { this.limit = limit; this.map = new Map(); this.size = 0; }
  get(key) {
    const v = this.map.get(key);
    if (v !== undefined) { this.map.delete(key); this.map.set(key, v); }
    return v;
  }
  has(key) { return this.map.has(key); }
  set(key, value) {
    if (this.map.has(key)) this.size -= this.map.get(key).bytes || 0;
    this.map.set(key, value);
    this.size += value.bytes || 0;
    for (const [k, v] of this.map) {
      if (this.size <= this.limit) break;
      this.map.delete(k);
      this.size -= v.bytes || 0;
    }
  }
  clear() { this.map.clear(); this.size = 0; }
}
const cache = new FrameCache(CACHE_BYTES);

function cross(a, b) {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

// The series' frames in display order.
export function buildSlices(instances) {
  const slices = [];
  const single = instances.every((ds) => (num(ds, "00280008", 1) || 1) <= 1);
  const orientation = instances.map((ds) => nums(ds, "00200037")).find((o) => o.length === 6);
  const normal = orientation ? cross(orientation.slice(0, 3), orientation.slice(3)) : null;
  for (const ds of instances) {
    const frames = Math.max(1, num(ds, "00280008", 1) || 1);
    const position = nums(ds, "00200032");
    for (let f = 0; f < frames; f++) {
      slices.push({
        ds, frame: f + 1, frames, uid: str(ds, "00080018"), number: num(ds, "00200013"),
        position: single && normal && position.length === 3
          ? position[0] * normal[0] + position[1] * normal[1] + position[2] * normal[2] : null,
        sliceLocation: num(ds, "00201041"),
      });
    }
  }
  const byPosition = single && slices.length > 1 && slices.every((s) => s.position !== null) &&
    new Set(slices.map((s) => s.position.toFixed(3))).size === slices.length;
  slices.sort((a, b) => (byPosition ? a.position - b.position : 0) ||
    ((a.number ?? 1e9) - (b.number ?? 1e9)) || a.uid.localeCompare(b.uid) || a.frame - b.frame);
  // geometric order, in the direction the images were numbered (head first for most CTs)
  const [head, tail] = [slices[0], slices[slices.length - 1]];
  if (byPosition && head.number !== undefined && tail.number !== undefined && head.number > tail.number) slices.reverse();
  return slices;
}

// --- one viewport: a series on a canvas -----------------------------------------------------
class Viewport {
  constructor(viewer, study, seriesUid) {
    this.viewer = viewer;
    this.study = study;
    this.seriesUid = seriesUid;
    this.index = 0;
    this.window = null;
    this.preset = "default";
    this.invert = false;
    this.fit = true;
    this.scale = 1;
    this.pan = { x: 0, y: 0 };
    this.inflight = new Map();
    this.controller = new AbortController();
    this.lut = null;
    this.lutKey = "";
    this.canvas = h("canvas.image", { tabIndex: 0, "aria-label": "Image" });
    this.off = document.createElement("canvas");
    this.overlay = { tl: h("div.ov.tl"), tr: h("div.ov.tr"), bl: h("div.ov.bl"), br: h("div.ov.br") };
    this.status = h("div.vp-status", "Loading…");
    this.slider = h("input.slice-slider", { type: "range", min: 0, max: 0, value: 0, step: 1, "aria-label": "Slice",
      oninput: (e) => this.go(Number(e.target.value)) });
    this.element = h("div.viewport", { onpointerdown: () => viewer.activate(this) },
      this.canvas, Object.values(this.overlay), this.status, h("div.slider-wrap", this.slider));
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.element);
    this.bindPointer();
  }

  async load() {
    const instances = await seriesMetadata(this.study.study_uid, this.seriesUid, this.controller.signal);
    this.slices = buildSlices(instances || []);
    if (!this.slices.length) throw new Error("this series has no instances");
    this.series = instances[0];
    this.slider.max = String(this.slices.length - 1);
    this.slider.hidden = this.slices.length < 2;
    const ds = this.series;
    this.fps = num(ds, "00082144") || num(ds, "00180040") || (num(ds, "00181063") ? 1000 / num(ds, "00181063") : 0) || 10;
    this.status.textContent = "";
  }

  dispose() {
    this.controller.abort();
    this.resize.disconnect();
  }

  slice() { return this.slices[this.index]; }
  key(s) { return `${this.seriesUid}|${s.uid}|${s.frame}`; }
  info(s) {
    if (!s.info) s.info = pixelInfo(s.ds, s.frame - 1);
    return s.info;
  }

  go(index, { linked = true } = {}) {
    if (!this.slices) return;
    const n = this.slices.length;
    const next = Math.max(0, Math.min(n - 1, index));
    const delta = next - this.index;
    if (next !== this.index) {
      this.index = next;
      this.draw();
    }
    if (linked && delta) this.viewer.linkedScroll(this, delta);
  }

  step(delta) { this.go(this.index + delta); }

  // the frame of a slice, from the cache or fetched
  async frame(s) {
    const key = this.key(s);
    const cached = cache.get(key);
    if (cached) return cached;
    if (this.inflight.has(key)) return this.inflight.get(key);
    const info = this.info(s);
    const promise = (async () => {
      let frame;
      if (info.clientRenders) {
        try {
          const bytes = await frameBytes(this.study.study_uid, this.seriesUid, s.uid, s.frame, this.controller.signal);
          frame = decode(bytes, info);
        } catch (error) {
          if (error.name === "AbortError") throw error;
          info.clientRenders = false; // fall back to the server's rendering
        }
      }
      if (!frame) {
        const win = info.gray ? (this.window || (this.preset !== "auto" && info.window) || null) : null;
        const bitmap = await renderedFrame(this.study.study_uid, this.seriesUid, s.uid, s.frame, win, this.controller.signal);
        frame = { kind: "bitmap", bitmap, window: win && { ...win }, bytes: bitmap.width * bitmap.height * 4 };
      }
      cache.set(key, frame);
      return frame;
    })();
    this.inflight.set(key, promise);
    try { return await promise; } finally { this.inflight.delete(key); }
  }

  // fetch the frames around the current slice, nearest first
  prefetch() {
    if (!this.slices) return;
    const n = this.slices.length;
    const perFrame = Math.max(1, (this.info(this.slice()).rows * this.info(this.slice()).columns) * 2);
    const radius = Math.min(n, Math.floor(CACHE_BYTES / this.viewer.viewports.length / 2 / perFrame));
    const wanted = [];
    for (let d = 0; d <= radius && wanted.length < radius; d++) {
      for (const i of d ? [this.index + d, this.index - d] : [this.index]) {
        if (i >= 0 && i < n && !cache.has(this.key(this.slices[i]))) wanted.push(this.slices[i]);
      }
    }
    this.queue = wanted;
    const pump = () => {
      while (this.inflight.size < CONCURRENCY && this.queue.length) {
        const s = this.queue.shift();
        if (cache.has(this.key(s)) || this.inflight.has(this.key(s))) continue;
        this.frame(s).then(() => { this.updateLoaded(); pump(); }, (e) => { if (e.name !== "AbortError") pump(); });
      }
    };
    pump();
  }

  updateLoaded() {
    if (!this.slices) return;
    let loaded = 0;
    for (const s of this.slices) if (cache.has(this.key(s))) loaded++;
    this.loaded = loaded;
    this.overlayText();
  }

  defaultWindow(s, frame) {
    const info = this.info(s);
    if (this.preset !== "auto" && info.window) return { ...info.window };
    return frame && frame.kind === "gray" ? fullRange(frame, info) : null; // null: the server's choice
  }

  async draw() {
    if (!this.slices) return;
    const s = this.slice();
    const index = this.index;
    this.slider.value = String(index);
    this.overlayText();
    let frame = cache.get(this.key(s));
    if (!frame) {
      this.prefetch();
      try {
        frame = await this.frame(s);
      } catch (e) {
        if (e.name !== "AbortError") { this.status.textContent = `Cannot show this image: ${e.message}`; }
        return;
      }
      if (index !== this.index) return; // scrolled on meanwhile
    } else {
      this.prefetch();
    }
    this.status.textContent = "";
    this.paint(s, frame);
  }

  paint(s, frame) {
    const info = this.info(s);
    if (!this.window && frame.kind === "gray") this.window = this.defaultWindow(s, frame);
    if (!this.window && frame.kind === "bitmap" && frame.window) this.window = { ...frame.window };
    const w = info.columns || (frame.bitmap && frame.bitmap.width);
    const ht = info.rows || (frame.bitmap && frame.bitmap.height);
    if (frame.kind === "bitmap") {
      const wkey = (w) => (w ? `${w.center}/${w.width}` : "");
      if (info.gray && wkey(frame.window) !== wkey(this.window)) this.rerender(s); // at the new window
      this.off.width = frame.bitmap.width;
      this.off.height = frame.bitmap.height;
      const ctx = this.off.getContext("2d");
      ctx.drawImage(frame.bitmap, 0, 0);
      if (this.invert) {
        ctx.globalCompositeOperation = "difference";
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, this.off.width, this.off.height);
        ctx.globalCompositeOperation = "source-over";
      }
    } else {
      if (this.off.width !== w || this.off.height !== ht) { this.off.width = w; this.off.height = ht; this.imageData = null; }
      const ctx = this.off.getContext("2d");
      if (!this.imageData || this.imageData.width !== w || this.imageData.height !== ht) this.imageData = ctx.createImageData(w, ht);
      if (frame.kind === "rgb") {
        if (this.invert) {
          const out = this.imageData.data;
          for (let i = 0; i < out.length; i += 4) {
            out[i] = 255 - frame.rgba[i]; out[i + 1] = 255 - frame.rgba[i + 1]; out[i + 2] = 255 - frame.rgba[i + 2]; out[i + 3] = 255;
          }
        } else this.imageData.data.set(frame.rgba);
      } else {
        const inverted = (info.photometric === "MONOCHROME1") !== this.invert;
        const key = `${frame.min}|${frame.max}|${info.slope}|${info.intercept}|${this.window.center}|${this.window.width}|${inverted}`;
        if (key !== this.lutKey) { this.lut = grayLut(frame, info, this.window, inverted); this.lutKey = key; }
        paintGray(frame, info, this.window, inverted, this.imageData.data, this.lut);
      }
      ctx.putImageData(this.imageData, 0, 0);
    }
    this.blit(s);
    this.canvas.dataset.rendered = String(this.index);
    this.overlayText();
  }

  rerender(s) {
    clearTimeout(this.rerenderTimer);
    this.rerenderTimer = setTimeout(async () => {
      const key = this.key(s);
      const info = this.info(s);
      try {
        const win = this.window && { ...this.window };
        const bitmap = await renderedFrame(this.study.study_uid, this.seriesUid, s.uid, s.frame, win, this.controller.signal);
        cache.set(key, { kind: "bitmap", bitmap, window: win, bytes: bitmap.width * bitmap.height * 4 });
        if (this.slice() === s && info) this.draw();
      } catch (e) { if (e.name !== "AbortError") errorToast(e); }
    }, 200);
  }

  // the off-screen image onto the visible canvas, zoomed and panned
  blit(s) {
    const dpr = window.devicePixelRatio || 1;
    const cw = Math.max(1, Math.round(this.element.clientWidth * dpr));
    const ch = Math.max(1, Math.round(this.element.clientHeight * dpr));
    if (this.canvas.width !== cw || this.canvas.height !== ch) { this.canvas.width = cw; this.canvas.height = ch; }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, cw, ch);
    const iw = this.off.width;
    const ih = this.off.height;
    const spacing = nums(s.ds, "00280030");
    const aspect = spacing.length === 2 && spacing[0] > 0 && spacing[1] > 0 ? spacing[0] / spacing[1] : 1;
    if (this.fit) this.scale = Math.min(cw / iw, ch / (ih * aspect)) * 0.98 / dpr;
    ctx.imageSmoothingEnabled = this.scale * dpr < 4;
    ctx.imageSmoothingQuality = "high";
    ctx.translate(cw / 2 + this.pan.x * dpr, ch / 2 + this.pan.y * dpr);
    ctx.scale(this.scale * dpr, this.scale * dpr * aspect);
    ctx.drawImage(this.off, -iw / 2, -ih / 2);
  }

  overlayText() {
    if (!this.slices) return;
    const s = this.slice();
    const st = this.study;
    const ds = s.ds;
    const info = this.info(s);
    const lines = (el, rows) => clear(el, rows.filter(Boolean).map((r) => h("div", r)));
    lines(this.overlay.tl, [
      personName(str(ds, "00100010")) || personName(st.patient_name),
      `ID ${str(ds, "00100020") || st.patient_id || ""}`,
      [date(str(ds, "00100030")), str(ds, "00100040")].filter(Boolean).join(" · "),
    ]);
    lines(this.overlay.tr, [
      str(ds, "00081030") || st.description,
      date(str(ds, "00080020") || st.study_date),
      `Se ${str(ds, "00200011")} ${str(ds, "00080060")}`.trim(),
      str(ds, "0008103E"),
    ]);
    const pos = nums(ds, "00200032");
    const loc = s.sliceLocation ?? (s.position !== null ? s.position : null);
    lines(this.overlay.bl, [
      h("span.slice-number", `Im ${this.index + 1}/${this.slices.length}`),
      s.number !== undefined ? `Inst ${s.number}${s.frames > 1 ? ` · frame ${s.frame}/${s.frames}` : ""}` : null,
      loc !== null && loc !== undefined ? `Loc ${Number(loc).toFixed(1)} mm` : null,
      pos.length === 3 && s.frames <= 1 ? `Pos ${pos.map((v) => v.toFixed(1)).join(", ")}` : null,
      num(ds, "00180050") ? `Thick ${num(ds, "00180050")} mm` : null,
      this.loaded !== undefined && this.loaded < this.slices.length ? `loaded ${this.loaded}/${this.slices.length}` : null,
    ]);
    lines(this.overlay.br, [
      this.window ? h("span.wl", `W ${Math.round(this.window.width)} L ${Math.round(this.window.center)}`) : (info.gray ? "" : info.photometric),
      `Zoom ${Math.round(this.scale * 100)}%${this.invert ? " · inverted" : ""}`,
      `${info.columns}×${info.rows}${info.clientRenders ? "" : " · server-rendered"}`,
    ]);
  }

  setWindow(window, preset) {
    this.window = window;
    if (preset) this.preset = preset;
    this.draw();
    this.viewer.syncToolbar();
  }

  applyPreset(name) {
    const found = PRESETS.find(([n]) => n === name);
    if (!found) return;
    this.preset = name;
    const s = this.slice();
    const frame = cache.get(this.key(s));
    if (found[2]) this.setWindow({ ...found[2] }, name);
    else if (name === "auto") this.setWindow(frame && frame.kind === "gray" ? fullRange(frame, this.info(s)) : null, name);
    else this.setWindow(this.defaultWindow(s, frame), name);
  }

  zoomBy(factor, cx = 0, cy = 0) {
    const old = this.scale;
    this.fit = false;
    this.scale = Math.max(0.05, Math.min(40, old * factor));
    const k = this.scale / old;
    this.pan.x = cx - (cx - this.pan.x) * k;
    this.pan.y = cy - (cy - this.pan.y) * k;
    this.draw();
    this.viewer.syncToolbar();
  }

  setFit() { this.fit = true; this.pan = { x: 0, y: 0 }; this.draw(); this.viewer.syncToolbar(); }
  setOneToOne() { this.fit = false; this.scale = 1 / (window.devicePixelRatio || 1); this.pan = { x: 0, y: 0 }; this.draw(); this.viewer.syncToolbar(); }
  toggleInvert() { this.invert = !this.invert; this.draw(); this.viewer.syncToolbar(); }
  reset() { this.invert = false; this.preset = "default"; this.window = null; this.setFit(); }

  bindPointer() {
    const canvas = this.canvas;
    let drag = null;
    let wheel = 0;
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("pointerdown", (e) => {
      canvas.focus();
      let tool = this.viewer.tool;
      if (e.button === 1 || (e.button === 0 && e.shiftKey)) tool = "pan";
      else if (e.button === 2 || (e.button === 0 && e.ctrlKey)) tool = "zoom";
      drag = { tool, x: e.clientX, y: e.clientY, window: this.window && { ...this.window }, scroll: 0 };
      canvas.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      drag.x = e.clientX;
      drag.y = e.clientY;
      if (drag.tool === "wl" && this.window) {
        const info = this.info(this.slice());
        const frame = cache.get(this.key(this.slice()));
        const range = frame && frame.kind === "gray" ? (frame.max - frame.min) * Math.abs(info.slope) : this.window.width * 2;
        const k = Math.max(0.05, range / 600);
        this.window = { center: this.window.center + dy * k, width: Math.max(1, this.window.width + dx * k) };
        this.preset = "custom";
        this.draw();
        this.viewer.syncToolbar();
      } else if (drag.tool === "pan") {
        this.fit = false;
        this.pan.x += dx;
        this.pan.y += dy;
        this.draw();
      } else if (drag.tool === "zoom") {
        this.zoomBy(Math.exp(-dy * 0.01));
      } else if (drag.tool === "scroll") {
        drag.scroll += dy;
        const steps = Math.trunc(drag.scroll / 8);
        if (steps) { drag.scroll -= steps * 8; this.step(steps); }
      }
    });
    const end = () => { drag = null; };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.viewer.activate(this);
      if (e.ctrlKey || e.metaKey) {
        const rect = canvas.getBoundingClientRect();
        this.zoomBy(Math.exp(-e.deltaY * 0.002), e.clientX - rect.left - rect.width / 2, e.clientY - rect.top - rect.height / 2);
        return;
      }
      const delta = e.deltaMode === 0 ? e.deltaY : e.deltaY * 40;
      wheel += delta;
      if (Math.abs(wheel) >= 40 || e.deltaMode !== 0) {
        const steps = Math.sign(wheel) * Math.max(1, Math.floor(Math.abs(wheel) / 100));
        wheel = 0;
        this.step(steps);
      }
    }, { passive: false });
  }
}

// --- the viewer screen: toolbar and one or two viewports ------------------------------------
class Viewer {
  constructor(main, study, series) {
    this.main = main;
    this.study = study;
    this.series = series; // the study's series summaries
    this.viewports = [];
    this.tool = "wl";
    this.link = false;
    this.playing = null;
    this.area = h("div.viewports");
    this.toolbar = this.buildToolbar();
    main.append(h("div.viewer", this.toolbar, this.area));
    this.onKey = (e) => this.key(e);
    document.addEventListener("keydown", this.onKey);
  }

  buildToolbar() {
    const tool = (name, label, title) => h("button.btn.tool", { dataset: { tool: name }, title, onclick: () => { this.tool = name; this.syncToolbar(); } }, label);
    this.preset = h("select.preset", { title: "Window presets", onchange: (e) => this.active.applyPreset(e.target.value) },
      PRESETS.filter((p) => !p[2]).map(([n, label]) => h("option", { value: n }, label)),
      h("optgroup", { label: "CT" }, PRESETS.filter((p) => p[2]).map(([n, label]) => h("option", { value: n }, label))),
      h("option", { value: "custom", hidden: true }, "Custom"));
    this.invertButton = h("button.btn", { title: "Invert (I)", onclick: () => this.active.toggleInvert() }, "Invert");
    this.playButton = h("button.btn.play", { title: "Cine (space)", onclick: () => this.togglePlay() }, "▶ Play");
    this.fpsInput = h("input.fps", { type: "number", min: 1, max: 60, value: 10, title: "Frames per second" });
    this.compare = h("select.compare", { title: "Compare with another series", onchange: (e) => this.setCompare(e.target.value) },
      h("option", { value: "" }, "Compare with…"),
      this.series.map((se) => h("option", { value: se.series_uid }, `Se ${se.number ?? "–"} ${se.modality || ""} ${se.description || ""} (${se.instances})`)));
    this.linkBox = h("input", { type: "checkbox", onchange: (e) => { this.link = e.target.checked; } });
    this.seriesSelect = h("select.series-select", { title: "Series", onchange: (e) => this.setSeries(e.target.value) },
      this.series.map((se) => h("option", { value: se.series_uid }, `Se ${se.number ?? "–"} ${se.modality || ""} ${se.description || ""} (${se.instances})`)));
    this.tagsLink = h("a.btn", { title: "The DICOM tags of this image" }, "Tags");
    return h("div.viewer-toolbar", { role: "toolbar" },
      h("a.btn", { href: `#/study/${enc(this.study.study_uid)}`, title: "Back to the study" }, "‹ Study"),
      this.seriesSelect,
      h("span.group", tool("wl", "W/L", "Drag to change window (left/right) and level (up/down)"),
        tool("pan", "Pan", "Drag to pan (or shift-drag)"), tool("zoom", "Zoom", "Drag up/down to zoom (or ctrl-drag, ctrl-wheel)"),
        tool("scroll", "Scroll", "Drag up/down to scroll through slices")),
      this.preset,
      h("span.group", h("button.btn", { title: "Fit to window (F)", onclick: () => this.active.setFit() }, "Fit"),
        h("button.btn", { title: "One image pixel per screen pixel (1)", onclick: () => this.active.setOneToOne() }, "1:1"),
        this.invertButton, h("button.btn", { title: "Reset (R)", onclick: () => this.active.reset() }, "Reset")),
      h("span.group", this.playButton, this.fpsInput, h("span.small.muted", "fps")),
      h("span.group", this.compare, h("label.small", this.linkBox, " link scroll")),
      this.tagsLink);
  }

  get active() { return this.activeViewport || this.viewports[0]; }

  activate(vp) {
    if (this.activeViewport === vp) return;
    this.activeViewport = vp;
    for (const v of this.viewports) v.element.classList.toggle("active", v === vp && this.viewports.length > 1);
    this.syncToolbar();
  }

  syncToolbar() {
    const vp = this.active;
    if (!vp) return;
    for (const b of this.toolbar.querySelectorAll("[data-tool]")) b.classList.toggle("on", b.dataset.tool === this.tool);
    this.preset.value = vp.preset;
    this.invertButton.classList.toggle("on", vp.invert);
    this.seriesSelect.value = vp.seriesUid;
    if (vp.slices) {
      const s = vp.slice();
      this.tagsLink.href = `#/tags/${enc(this.study.study_uid)}/${enc(vp.seriesUid)}/${enc(s.uid)}`;
      this.fpsInput.placeholder = String(Math.round(vp.fps));
    }
    this.playButton.textContent = this.playing ? "❚❚ Pause" : "▶ Play";
    this.playButton.classList.toggle("on", Boolean(this.playing));
  }

  async addViewport(seriesUid, startAt) {
    const vp = new Viewport(this, this.study, seriesUid);
    this.viewports.push(vp);
    this.area.append(vp.element);
    this.area.classList.toggle("two", this.viewports.length > 1);
    this.activate(vp);
    try {
      await vp.load();
    } catch (e) {
      vp.status.textContent = `Cannot load this series: ${e.message}`;
      if (e.name !== "AbortError") errorToast(e);
      return vp;
    }
    if (startAt && startAt.instance) {
      const i = vp.slices.findIndex((s) => s.uid === startAt.instance);
      if (i >= 0) vp.index = i;
    } else if (startAt && startAt.slice !== undefined) {
      vp.index = Math.max(0, Math.min(vp.slices.length - 1, Number(startAt.slice) || 0));
    } else if (vp.slices.length > 1 && vp.slices[0].frames <= 1) {
      vp.index = Math.floor(vp.slices.length / 2); // a cross-sectional series opens in its middle
    }
    if (vp.slices.length > 1 && vp.slices[0].frames > 1) this.fpsInput.value = String(Math.round(vp.fps));
    this.syncToolbar();
    vp.draw();
    return vp;
  }

  async setSeries(seriesUid) {
    const vp = this.active;
    if (!vp || vp.seriesUid === seriesUid) return;
    const i = this.viewports.indexOf(vp);
    this.stopPlay();
    vp.dispose();
    vp.element.remove();
    this.viewports.splice(i, 1);
    const fresh = await this.addViewport(seriesUid);
    this.viewports.splice(this.viewports.indexOf(fresh), 1);
    this.viewports.splice(i, 0, fresh);
    if (i === 0 && this.viewports.length > 1) this.area.prepend(fresh.element);
    this.saveUrl();
  }

  async setCompare(seriesUid) {
    while (this.viewports.length > 1) {
      const vp = this.viewports.pop();
      vp.dispose();
      vp.element.remove();
    }
    this.area.classList.remove("two");
    this.activeViewport = null;
    for (const v of this.viewports) v.element.classList.remove("active");
    if (seriesUid) await this.addViewport(seriesUid);
    for (const v of this.viewports) v.draw();
    this.compare.value = seriesUid || "";
    this.saveUrl();
  }

  saveUrl() {
    const [a, b] = this.viewports;
    const q = b ? `?compare=${enc(b.seriesUid)}` : "";
    history.replaceState(null, "", `#/viewer/${enc(this.study.study_uid)}/${enc(a.seriesUid)}${q}`);
  }

  linkedScroll(from, delta) {
    if (!this.link) return;
    for (const vp of this.viewports) if (vp !== from) vp.go(vp.index + delta, { linked: false });
  }

  togglePlay() { if (this.playing) this.stopPlay(); else this.startPlay(); }
  startPlay() {
    const vp = this.active;
    if (!vp || !vp.slices || vp.slices.length < 2) return;
    let last = performance.now();
    const tick = (now) => {
      if (!this.playing) return;
      const fps = Math.max(1, Math.min(60, Number(this.fpsInput.value) || vp.fps || 10));
      if (now - last >= 1000 / fps) {
        const next = (vp.index + 1) % vp.slices.length;
        if (cache.has(vp.key(vp.slices[next]))) { // wait for frames still loading
          last = now;
          vp.go(next);
        } else vp.prefetch();
      }
      this.playing = requestAnimationFrame(tick);
    };
    this.playing = requestAnimationFrame(tick);
    this.syncToolbar();
  }
  stopPlay() {
    if (this.playing) cancelAnimationFrame(this.playing);
    this.playing = null;
    this.syncToolbar();
  }

  key(e) {
    if (e.target.closest && e.target.closest("input, select, textarea, .modal")) return; // their own keys
    const vp = this.active;
    if (!vp || !vp.slices) return;
    const n = vp.slices.length;
    const actions = {
      ArrowUp: () => vp.step(-1), ArrowLeft: () => vp.step(-1), ArrowDown: () => vp.step(1), ArrowRight: () => vp.step(1),
      PageUp: () => vp.step(-Math.max(1, Math.round(n / 10))), PageDown: () => vp.step(Math.max(1, Math.round(n / 10))),
      Home: () => vp.go(0), End: () => vp.go(n - 1),
      i: () => vp.toggleInvert(), f: () => vp.setFit(), 1: () => vp.setOneToOne(), r: () => vp.reset(),
      "+": () => vp.zoomBy(1.25), "=": () => vp.zoomBy(1.25), "-": () => vp.zoomBy(0.8),
      " ": () => this.togglePlay(),
    };
    const action = actions[e.key] || actions[e.key.toLowerCase()];
    if (action && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      action();
    }
  }

  dispose() {
    this.stopPlay();
    document.removeEventListener("keydown", this.onKey);
    for (const vp of this.viewports) vp.dispose();
  }
}

export async function render(main, [studyUid, seriesUid], query) {
  const study = await api.study(studyUid);
  const series = [...(study.series || [])].sort((a, b) => (Number(a.number ?? 1e9) - Number(b.number ?? 1e9)));
  if (!series.length) throw new Error("this study has no series");
  const viewer = new Viewer(main, study, series);
  window.pacsnodeViewer = viewer; // for the end-to-end tests and the console
  await viewer.addViewport(seriesUid || series[0].series_uid, { instance: query.instance, slice: query.slice });
  if (query.compare) {
    viewer.compare.value = query.compare;
    await viewer.setCompare(query.compare);
    viewer.activate(viewer.viewports[0]);
  }
  viewer.viewports[0].canvas.focus();
  return () => {
    viewer.dispose();
    if (window.pacsnodeViewer === viewer) delete window.pacsnodeViewer;
  };
}

