// The single-page application's router: #/section/arg/arg?query → a screen's render().
// Each screen module exports render(main, args, query) and may return a cleanup function.

import { clear, errorToast, h, parseHashQuery } from "./util.js";

const screens = {
  studies: () => import("./studies.js"),
  patient: () => import("./patient.js"),
  study: () => import("./study.js"),
  series: () => import("./series.js"),
  viewer: () => import("./viewer.js"),
  tags: () => import("./tags.js"),
  upload: () => import("./upload.js"),
  peers: () => import("./peers.js"),
  worklist: () => import("./worklist.js"),
  status: () => import("./status.js"),
};
// the nav entry highlighted for a screen
const sections = { patient: "studies", study: "studies", series: "studies", viewer: "studies",
  tags: "studies" };

let cleanup = null;
let generation = 0;

async function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, queryText] = hash.split("?");
  const [name, ...args] = path.split("/").map(decodeURIComponent);
  const screen = screens[name] ? name : "studies";
  const section = sections[screen] || screen;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.section === section);
  }
  document.body.dataset.screen = screen;
  const mine = ++generation;
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  const main = document.getElementById("app");
  try {
    const module = await screens[screen]();
    if (mine !== generation) return;
    clear(main);
    const result = await module.render(main, args.filter((a) => a !== ""), parseHashQuery(queryText));
    if (mine !== generation) { if (typeof result === "function") result(); return; }
    cleanup = typeof result === "function" ? result : null;
  } catch (error) {
    if (mine !== generation) return;
    clear(main, h("div.pad", h("h1", "Something went wrong"), h("p.error", error.message || String(error))));
    errorToast(error);
  }
}

window.addEventListener("hashchange", route);
route();
