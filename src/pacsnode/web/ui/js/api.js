// pacsnode's REST API (/api) and DICOMweb (/dicom-web), as the UI uses them. Every request
// of the UI goes through this module: no private back doors.

export const DICOMWEB = "/dicom-web";
const EXPLICIT_VR_LE = "1.2.840.10008.1.2.1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

async function problem(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && (body.detail || body.title)) {
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    }
  } catch { /* not JSON */ }
  return new ApiError(response.status, detail);
}

export async function request(method, url, { body, headers, signal } = {}) {
  const init = { method, headers: { ...(headers || {}) }, signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) throw await problem(response);
  return response;
}

export async function getJSON(url, options = {}) {
  const response = await request("GET", url, {
    ...options, headers: { Accept: "application/json", ...(options.headers || {}) } });
  if (response.status === 204) return null;
  return response.json();
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    q.append(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

const enc = encodeURIComponent;

// --- REST API --------------------------------------------------------------------------
export const api = {
  stats: () => getJSON("/api/stats"),
  studies: (params, signal) => getJSON(`/api/studies${query(params)}`, { signal }),
  study: (uid) => getJSON(`/api/studies/${enc(uid)}`),
  patient: (id) => getJSON(`/api/patients/${enc(id)}`),
  series: (uid) => getJSON(`/api/series/${enc(uid)}`),
  remove: (level, uid) => request("DELETE", `/api/${level}/${enc(uid)}`),
  archiveUrl: (uid) => `/api/studies/${enc(uid)}/archive`,
  peers: () => getJSON("/api/peers"),
  addPeer: (peer) => request("POST", "/api/peers", { body: peer }).then((r) => r.json()),
  removePeer: (name) => request("DELETE", `/api/peers/${enc(name)}`),
  echo: (name) => request("POST", `/api/peers/${enc(name)}/echo`).then((r) => r.json()),
  send: (study, peer) => request("POST", `/api/studies/${enc(study)}/send`, { body: { peer } })
    .then((r) => r.json()),
  jobs: (params) => getJSON(`/api/jobs${query(params || {})}`),
  job: (id) => getJSON(`/api/jobs/${id}`),
  cancelJob: (id) => request("DELETE", `/api/jobs/${id}`).then((r) => r.json()),
  worklist: (params) => getJSON(`/api/worklist${query(params || {})}`),
  addWorklist: (item) => request("POST", "/api/worklist", { body: item }).then((r) => r.json()),
  setWorklistState: (id, state) => request("PATCH", `/api/worklist/${id}`, { body: { state } })
    .then((r) => r.json()),
  removeWorklist: (id) => request("DELETE", `/api/worklist/${id}`),
};

// --- DICOMweb --------------------------------------------------------------------------
export function seriesUrl(study, series) {
  return `${DICOMWEB}/studies/${enc(study)}/series/${enc(series)}`;
}
export function instanceUrl(study, series, instance) {
  return `${seriesUrl(study, series)}/instances/${enc(instance)}`;
}
export const thumbnailUrl = (study, series) => `${seriesUrl(study, series)}/thumbnail`;

export function seriesMetadata(study, series, signal) {
  return getJSON(`${seriesUrl(study, series)}/metadata`,
    { signal, headers: { Accept: "application/dicom+json" } });
}
export async function instanceMetadata(study, series, instance) {
  const found = await getJSON(`${instanceUrl(study, series, instance)}/metadata`,
    { headers: { Accept: "application/dicom+json" } });
  return found[0];
}
export function studySeries(study) {
  return getJSON(`${DICOMWEB}/studies/${enc(study)}/series?includefield=all`,
    { headers: { Accept: "application/dicom+json" } }).then((r) => r || []);
}

// The first part of a multipart/related body.
function firstPart(buffer, contentType) {
  const match = /boundary="?([^";]+)"?/i.exec(contentType || "");
  const bytes = new Uint8Array(buffer);
  if (!match) return bytes;
  const boundary = new TextEncoder().encode(`--${match[1]}`);
  const find = (needle, from) => {
    outer: for (let i = from; i <= bytes.length - needle.length; i++) {
      for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  };
  const start = find(boundary, 0);
  if (start < 0) throw new Error("malformed multipart answer");
  const headerEnd = find(new Uint8Array([13, 10, 13, 10]), start);
  if (headerEnd < 0) throw new Error("malformed multipart answer");
  const headers = new TextDecoder().decode(bytes.subarray(start, headerEnd));
  const bodyStart = headerEnd + 4;
  const length = /content-length:\s*(\d+)/i.exec(headers);
  if (length) return bytes.slice(bodyStart, bodyStart + Number(length[1]));
  const end = find(new Uint8Array([13, 10, ...boundary]), bodyStart);
  return bytes.slice(bodyStart, end < 0 ? bytes.length : end);
}

// One frame (1-based) as native little endian bytes (WADO-RS, PS3.18 8.7.3.5.2).
export async function frameBytes(study, series, instance, frame, signal) {
  const response = await request("GET", `${instanceUrl(study, series, instance)}/frames/${frame}`, {
    signal,
    headers: { Accept: `multipart/related; type="application/octet-stream"; transfer-syntax=${EXPLICIT_VR_LE}` },
  });
  const buffer = await response.arrayBuffer();
  return firstPart(buffer, response.headers.get("Content-Type"));
}

// A frame rendered by the server (PNG), for what the client does not render itself.
export async function renderedFrame(study, series, instance, frame, window, signal) {
  const params = window ? `?window=${window.center},${window.width}` : "";
  const response = await request("GET",
    `${instanceUrl(study, series, instance)}/frames/${frame}/rendered${params}`,
    { signal, headers: { Accept: "image/png" } });
  return createImageBitmap(await response.blob());
}

// STOW-RS of some files, with upload progress (bytes sent, bytes total).
export function stow(files, onProgress) {
  const boundary = `pacsnode-${Math.random().toString(36).slice(2)}${Date.now()}`;
  const parts = [];
  for (const file of files) {
    parts.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, file, "\r\n");
  }
  parts.push(`--${boundary}--\r\n`);
  const body = new Blob(parts);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${DICOMWEB}/studies`);
    xhr.setRequestHeader("Content-Type",
      `multipart/related; type="application/dicom"; boundary=${boundary}`);
    xhr.setRequestHeader("Accept", "application/dicom+json");
    xhr.upload.onprogress = (e) => onProgress && onProgress(e.loaded, e.total || body.size);
    xhr.onerror = () => reject(new ApiError(0, "network error"));
    xhr.onload = () => {
      let json = null;
      try { json = JSON.parse(xhr.responseText); } catch { /* none */ }
      if (xhr.status === 200 || xhr.status === 202 || xhr.status === 409) {
        resolve({ status: xhr.status, body: json || {} });
      } else {
        reject(new ApiError(xhr.status, (json && json.detail) || `HTTP ${xhr.status}`));
      }
    };
    xhr.send(body);
  });
}
