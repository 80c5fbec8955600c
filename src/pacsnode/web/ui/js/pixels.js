// Pixel pipeline of the viewer: a WADO-RS frame (native little endian bytes) decoded into
// stored values, then Modality LUT (rescale slope/intercept) → VOI (linear window, PS3.3
// C.11.2.1.2) → MONOCHROME1 / invert → 8-bit grey, through a lookup table built once per
// window; colour (RGB, YBR_FULL) converted straight to RGBA. What this module cannot
// render (palette colour, LUT sequences, float or 1-bit pixels, subsampled YBR) is drawn
// from the server's /rendered image instead.

import { first, num, nums, str, values } from "./util.js";

const SHARED_FG = "52009229";
const PER_FRAME_FG = "52009230";
const PIXEL_VALUE_TRANSFORMATION = "00289145";
const FRAME_VOI_LUT = "00289132";

// A functional group's attribute (enhanced multi-frame), else the top-level one.
function fgItem(ds, group, frameIndex) {
  const perFrame = values(ds, PER_FRAME_FG)[frameIndex];
  const own = perFrame && first(perFrame, group);
  if (own) return own;
  const shared = first(ds, SHARED_FG);
  return shared ? first(shared, group) : undefined;
}

// What the client needs to know to render one frame of an instance.
export function pixelInfo(ds, frameIndex = 0) {
  const photometric = str(ds, "00280004").trim().toUpperCase() || "MONOCHROME2";
  const pvt = fgItem(ds, PIXEL_VALUE_TRANSFORMATION, frameIndex);
  const voi = fgItem(ds, FRAME_VOI_LUT, frameIndex);
  const centers = nums(ds, "00281050").length ? nums(ds, "00281050") : (voi ? nums(voi, "00281050") : []);
  const widths = nums(ds, "00281051").length ? nums(ds, "00281051") : (voi ? nums(voi, "00281051") : []);
  const info = {
    rows: num(ds, "00280010", 0),
    columns: num(ds, "00280011", 0),
    samples: num(ds, "00280002", 1),
    bitsAllocated: num(ds, "00280100", 16),
    bitsStored: num(ds, "00280101", num(ds, "00280100", 16)),
    signed: num(ds, "00280103", 0) === 1,
    planar: num(ds, "00280006", 0),
    photometric,
    slope: num(ds, "00281053", pvt ? num(pvt, "00281053", 1) : 1),
    intercept: num(ds, "00281052", pvt ? num(pvt, "00281052", 0) : 0),
    window: centers.length && widths.length && widths[0] > 0 ? { center: centers[0], width: widths[0] } : null,
    hasModalityLutSequence: Boolean(ds["00283000"] && ds["00283000"].Value),
    floatPixels: Boolean(ds["7FE00008"] || ds["7FE00009"]),
  };
  info.gray = photometric === "MONOCHROME1" || photometric === "MONOCHROME2";
  info.clientRenders = info.rows > 0 && info.columns > 0 && !info.hasModalityLutSequence && !info.floatPixels && (
    (info.gray && info.samples === 1 && [8, 16, 32].includes(info.bitsAllocated)) ||
    (info.samples === 3 && info.bitsAllocated === 8 && (photometric === "RGB" || photometric === "YBR_FULL")));
  return info;
}

// Native frame bytes → {kind: "gray", values, min, max} or {kind: "rgb", rgba}.
export function decode(bytes, info) {
  const { rows, columns, samples, bitsAllocated, bitsStored, signed } = info;
  const pixels = rows * columns;
  const expected = pixels * samples * (bitsAllocated / 8);
  if (bytes.byteLength < expected) throw new Error(`frame is ${bytes.byteLength} bytes, ${expected} expected`);
  const buffer = bytes.byteOffset % 4 === 0 ? bytes.buffer : bytes.slice().buffer;
  const offset = bytes.byteOffset % 4 === 0 ? bytes.byteOffset : 0;
  if (!info.gray) return { kind: "rgb", rgba: toRGBA(new Uint8Array(buffer, offset, expected), info), bytes: pixels * 4 };
  let values;
  if (bitsAllocated === 8) values = signed ? new Int8Array(buffer, offset, pixels) : new Uint8Array(buffer, offset, pixels);
  else if (bitsAllocated === 16) values = signed ? new Int16Array(buffer, offset, pixels) : new Uint16Array(buffer, offset, pixels);
  else values = signed ? new Int32Array(buffer, offset, pixels) : new Uint32Array(buffer, offset, pixels);
  if (buffer.byteLength > expected * 1.5) values = values.slice(); // do not keep a large buffer alive
  let min = Infinity;
  let max = -Infinity;
  if (bitsStored < bitsAllocated) {
    // bits above Bits Stored may hold anything (overlays, garbage): mask, sign-extend
    const shift = 32 - bitsStored;
    const mask = bitsStored >= 32 ? 0xffffffff : (2 ** bitsStored) - 1;
    for (let i = 0; i < pixels; i++) {
      const v = signed ? ((values[i] << shift) >> shift) : (values[i] & mask) >>> 0;
      values[i] = v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  } else {
    for (let i = 0; i < pixels; i++) {
      const v = values[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return { kind: "gray", values, min, max, bytes: values.byteLength };
}

function toRGBA(src, info) {
  const n = info.rows * info.columns;
  const out = new Uint8ClampedArray(n * 4);
  const planar = info.planar === 1;
  const ybr = info.photometric === "YBR_FULL";
  for (let i = 0; i < n; i++) {
    let a, b, c;
    if (planar) { a = src[i]; b = src[i + n]; c = src[i + 2 * n]; } else { a = src[3 * i]; b = src[3 * i + 1]; c = src[3 * i + 2]; }
    if (ybr) { // PS3.3 C.7.6.3.1.2
      const cb = b - 128;
      const cr = c - 128;
      out[4 * i] = a + 1.402 * cr;
      out[4 * i + 1] = a - 0.344136 * cb - 0.714136 * cr;
      out[4 * i + 2] = a + 1.772 * cb;
    } else { out[4 * i] = a; out[4 * i + 1] = b; out[4 * i + 2] = c; }
    out[4 * i + 3] = 255;
  }
  return out;
}

// The stored-value → grey lookup table for a window (linear VOI, PS3.3 C.11.2.1.2.1).
export function grayLut(frame, info, window, inverted) {
  const size = frame.max - frame.min + 1;
  if (!(size > 0) || size > (1 << 20)) return null;
  const lut = new Uint8ClampedArray(size);
  const c = window.center - 0.5;
  const w = Math.max(1, window.width) - 1;
  const lo = c - w / 2;
  const hi = c + w / 2;
  for (let i = 0; i < size; i++) {
    const x = (frame.min + i) * info.slope + info.intercept;
    let y;
    if (x <= lo) y = 0;
    else if (x > hi) y = 255;
    else y = ((x - c) / Math.max(w, 1) + 0.5) * 255;
    lut[i] = inverted ? 255 - y : y;
  }
  return lut;
}

// Grey values into an RGBA ImageData buffer.
export function paintGray(frame, info, window, inverted, rgba, lut) {
  const { values, min } = frame;
  const n = values.length;
  if (lut) {
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const g = lut[values[i] - min];
      rgba[j] = g; rgba[j + 1] = g; rgba[j + 2] = g; rgba[j + 3] = 255;
    }
    return;
  }
  const c = window.center - 0.5;
  const w = Math.max(1, window.width - 1);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    const x = values[i] * info.slope + info.intercept;
    let g = ((x - c) / w + 0.5) * 255;
    g = g < 0 ? 0 : g > 255 ? 255 : g;
    if (inverted) g = 255 - g;
    rgba[j] = g; rgba[j + 1] = g; rgba[j + 2] = g; rgba[j + 3] = 255;
  }
}

// The window that shows a frame's whole range of modality values.
export function fullRange(frame, info) {
  const a = frame.min * info.slope + info.intercept;
  const b = frame.max * info.slope + info.intercept;
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  return { center: (lo + hi) / 2 + 0.5, width: Math.max(1, hi - lo + 1) };
}
