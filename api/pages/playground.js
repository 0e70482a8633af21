// The playground: one image, its mask (painted, loaded or detected), and what the API answered.
//
// The mask lives in two canvases of the image's own size: `mask` (black = keep, white =
// remove) is what gets uploaded, `mask-view` is the same strokes tinted for the eye. Every
// change is an operation in `state.ops`, so undo replays the list minus its last entry
// instead of keeping full-size snapshots (a 4096² image would cost 64 MB per step).

// include=mask: the regions and the mask in one answer (one request of the plan, not two).
const ROUTES = {
  detect: "api/v1/detect?include=mask",
  remove: "api/v1/remove-watermark",
  watermarks: "api/v1/watermarks",
};
const KEY_STORAGE = "iopaint-playground-api-key";
const TINT = [255, 30, 90];
const TINT_CSS = `rgb(${TINT.join(",")})`;
// Marks on the page's timeline, up to the first result (read by
// benchmarks/playground_first_result.py).
const MARKS = {
  pressed: "iopaint:remove-pressed",
  maskEncoded: "iopaint:mask-encoded",
  answered: "iopaint:answer-received",
  shown: "iopaint:first-result",
};

const $ = (id) => document.getElementById(id);
const els = {
  key: $("api-key"),
  keyVisibility: $("key-visibility"),
  keyForget: $("key-forget"),
  dropZone: $("drop-zone"),
  imageInput: $("image-input"),
  imageInfo: $("image-info"),
  brush: $("tool-brush"),
  eraser: $("tool-eraser"),
  size: $("brush-size"),
  sizeValue: $("brush-size-value"),
  undo: $("undo"),
  clear: $("clear-mask"),
  loadMask: $("load-mask"),
  maskInput: $("mask-input"),
  detect: $("detect"),
  remove: $("remove"),
  cancel: $("cancel"),
  progressBox: $("progress-box"),
  progress: $("progress"),
  status: $("status"),
  error: $("error"),
  errorMessage: $("error-message"),
  errorDetail: $("error-detail"),
  viewEdit: $("view-edit"),
  viewCompare: $("view-compare"),
  zoom: $("zoom"),
  split: $("compare-position"),
  download: $("download"),
  response: $("response"),
  regionsList: $("regions-list"),
  viewport: $("viewport"),
  placeholder: $("placeholder"),
  wrap: $("canvas-wrap"),
  original: $("original"),
  result: $("result"),
  regions: $("regions"),
  maskView: $("mask-view"),
  compareLine: $("compare-line"),
  cursor: $("brush-cursor"),
  profile: $("watermark-profile"),
  refreshProfiles: $("refresh-profiles"),
  uploadProfile: $("upload-profile"),
  profileInput: $("profile-input"),
  profileNote: $("profile-note"),
};

const state = {
  file: null,
  width: 0,
  height: 0,
  imageUrl: null,
  resultUrl: null,
  ops: [],
  stroke: null,
  tool: "brush",
  size: Number(els.size.value),
  view: "edit",
  actualSize: false,
  split: 50,
  comparing: false,
  request: null,
  phase: "",
  ticker: null,
  firstResultMarked: false,
};

const mask = document.createElement("canvas");
// Read back once per Remove (grayPng): kept in memory rather than on a GPU.
const maskCtx = mask.getContext("2d", { willReadFrequently: true });
const viewCtx = els.maskView.getContext("2d");

// --- API key -------------------------------------------------------------------------

els.key.value = sessionStorage.getItem(KEY_STORAGE) ?? "";
// Enter in the key field must not submit anything anywhere (the key stays out of URLs).
$("key-form").addEventListener("submit", (event) => event.preventDefault());
els.key.addEventListener("input", () => {
  const key = els.key.value.trim();
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
});
els.keyForget.addEventListener("click", () => {
  els.key.value = "";
  sessionStorage.removeItem(KEY_STORAGE);
  els.key.focus();
});
els.keyVisibility.addEventListener("click", () => {
  const show = els.key.type === "password";
  els.key.type = show ? "text" : "password";
  els.keyVisibility.setAttribute("aria-pressed", String(show));
  els.keyVisibility.textContent = show ? "Hide" : "Show";
});

// --- opening an image -----------------------------------------------------------------

els.dropZone.addEventListener("click", () => els.imageInput.click());
els.imageInput.addEventListener("change", () => {
  const [file] = els.imageInput.files;
  els.imageInput.value = "";
  if (file) openImage(file);
});

document.addEventListener("dragover", (event) => {
  if (!event.dataTransfer?.types.includes("Files")) return;
  event.preventDefault();
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", (event) => {
  if (event.relatedTarget === null) document.body.classList.remove("dragging");
});
document.addEventListener("drop", (event) => {
  document.body.classList.remove("dragging");
  const file = event.dataTransfer?.files[0];
  if (!file) return;
  event.preventDefault();
  openImage(file);
});
document.addEventListener("paste", (event) => {
  const item = [...(event.clipboardData?.items ?? [])].find(
    (entry) => entry.kind === "file" && entry.type.startsWith("image/"),
  );
  if (item) openImage(item.getAsFile());
});

async function openImage(file) {
  clearError();
  const url = URL.createObjectURL(file);
  const probe = new Image();
  probe.src = url;
  try {
    await probe.decode();
  } catch {
    URL.revokeObjectURL(url);
    showError(
      "This browser cannot show that file, so it cannot be edited here.",
      `${file.name || "The file"} (${file.type || "unknown type"}) is not an image this page ` +
        "can display. The API takes JPEG, PNG or WebP.",
    );
    return;
  }
  if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
  state.file = file;
  state.imageUrl = url;
  // Natural sizes are upright (EXIF orientation applied), as the server sees the image.
  state.width = probe.naturalWidth;
  state.height = probe.naturalHeight;
  els.original.src = url;
  await els.original.decode();
  for (const canvas of [mask, els.maskView]) {
    canvas.width = state.width;
    canvas.height = state.height;
  }
  state.ops = [];
  redraw();
  clearResult();
  drawRegions([]);
  els.regions.setAttribute("viewBox", `0 0 ${state.width} ${state.height}`);
  els.imageInfo.textContent =
    `${file.name || "Pasted image"}: ${state.width} × ${state.height} px, ` +
    `${formatBytes(file.size)}`;
  els.placeholder.hidden = true;
  els.wrap.hidden = false;
  setView("edit");
  layout();
  setStatus("Paint over the watermark (or press Detect), then Remove.");
  updateButtons();
}

// --- layout and zoom ------------------------------------------------------------------

function layout() {
  if (!state.file) return;
  let scale = 1;
  if (!state.actualSize) {
    const top = els.viewport.getBoundingClientRect().top;
    const availableWidth = els.viewport.clientWidth;
    // Room below for the shortcuts line and the start of the API's answer.
    const availableHeight = Math.max(240, window.innerHeight - Math.max(top, 0) - 120);
    scale = Math.min(1, availableWidth / state.width, availableHeight / state.height);
  }
  els.wrap.style.width = `${Math.max(1, Math.round(state.width * scale))}px`;
  els.wrap.style.height = `${Math.max(1, Math.round(state.height * scale))}px`;
  els.wrap.classList.toggle("actual-size", state.actualSize);
}

window.addEventListener("resize", layout);

function setActualSize(on) {
  const viewport = els.viewport;
  const centerX = (viewport.scrollLeft + viewport.clientWidth / 2) / viewport.scrollWidth;
  const centerY = (viewport.scrollTop + viewport.clientHeight / 2) / viewport.scrollHeight;
  state.actualSize = on;
  layout();
  viewport.scrollLeft = centerX * viewport.scrollWidth - viewport.clientWidth / 2;
  viewport.scrollTop = centerY * viewport.scrollHeight - viewport.clientHeight / 2;
  els.zoom.setAttribute("aria-pressed", String(on));
  els.zoom.textContent = on ? "Fit to window" : "Zoom to 100 %";
}

els.zoom.addEventListener("click", () => setActualSize(!state.actualSize));

// --- views: editing the mask, or comparing before and after ----------------------------

function setView(view) {
  state.view = view === "compare" && state.resultUrl ? "compare" : "edit";
  const comparing = state.view === "compare";
  els.viewEdit.setAttribute("aria-pressed", String(!comparing));
  els.viewCompare.setAttribute("aria-pressed", String(comparing));
  els.result.hidden = !comparing;
  els.compareLine.hidden = !comparing;
  els.maskView.hidden = comparing;
  els.regions.hidden = comparing;
  els.split.disabled = !comparing;
  els.wrap.classList.toggle("editing", !comparing);
  els.wrap.classList.toggle("comparing", comparing);
  els.cursor.hidden = true;
  applySplit(state.split);
}

function applySplit(percent) {
  state.split = Math.min(100, Math.max(0, percent));
  els.split.value = String(Math.round(state.split));
  els.result.style.clipPath = `inset(0 0 0 ${state.split}%)`;
  els.compareLine.style.left = `${state.split}%`;
}

els.viewEdit.addEventListener("click", () => setView("edit"));
els.viewCompare.addEventListener("click", () => setView("compare"));
els.split.addEventListener("input", () => applySplit(Number(els.split.value)));

// --- the mask: operations, replayed onto both canvases ---------------------------------

function strokeSegment(ctx, color, composite, size, from, to) {
  ctx.globalCompositeOperation = composite;
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = size;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  if (from[0] === to[0] && from[1] === to[1]) {
    ctx.arc(from[0], from[1], size / 2, 0, 2 * Math.PI);
    ctx.fill();
  } else {
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
  }
}

function drawSegment(op, from, to) {
  strokeSegment(maskCtx, op.erase ? "#000" : "#fff", "source-over", op.size, from, to);
  strokeSegment(viewCtx, TINT_CSS, op.erase ? "destination-out" : "source-over", op.size, from, to);
}

function clearCanvases() {
  maskCtx.globalCompositeOperation = "source-over";
  maskCtx.fillStyle = "#000";
  maskCtx.fillRect(0, 0, mask.width, mask.height);
  viewCtx.clearRect(0, 0, els.maskView.width, els.maskView.height);
}

function applyOp(op) {
  if (op.kind === "clear") {
    clearCanvases();
  } else if (op.kind === "layer") {
    // A loaded or detected mask joins what is painted: the brighter pixel wins.
    maskCtx.globalCompositeOperation = "lighten";
    maskCtx.drawImage(op.gray, 0, 0);
    viewCtx.globalCompositeOperation = "source-over";
    viewCtx.drawImage(op.tint, 0, 0);
  } else {
    const points = op.points;
    drawSegment(op, points[0], points[0]);
    for (let i = 1; i < points.length; i += 1) drawSegment(op, points[i - 1], points[i]);
  }
}

function redraw() {
  clearCanvases();
  for (const op of state.ops) applyOp(op);
}

function pushOp(op) {
  state.ops.push(op);
  applyOp(op);
  updateButtons();
}

/** Whether anything was painted or loaded since the last clear. */
function hasMask() {
  const last = state.ops.at(-1);
  return last !== undefined && last.kind !== "clear";
}

function undo() {
  if (!state.ops.length) return;
  state.ops.pop();
  redraw();
  updateButtons();
}

els.undo.addEventListener("click", undo);
els.clear.addEventListener("click", () => pushOp({ kind: "clear" }));

function setTool(tool) {
  state.tool = tool;
  els.brush.setAttribute("aria-pressed", String(tool === "brush"));
  els.eraser.setAttribute("aria-pressed", String(tool === "eraser"));
}

function setSize(size) {
  state.size = Math.round(Math.min(Number(els.size.max), Math.max(Number(els.size.min), size)));
  els.size.value = String(state.size);
  els.sizeValue.textContent = String(state.size);
}

els.brush.addEventListener("click", () => setTool("brush"));
els.eraser.addEventListener("click", () => setTool("eraser"));
els.size.addEventListener("input", () => setSize(Number(els.size.value)));

/** A mask image (white = remove) as a layer operation, sized to the image. */
function base64Png(text) {
  const bytes = Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  return new Blob([bytes], { type: "image/png" });
}

async function maskLayer(blob) {
  const bitmap = await createImageBitmap(blob);
  const { width, height } = state;
  const gray = document.createElement("canvas");
  gray.width = width;
  gray.height = height;
  const grayCtx = gray.getContext("2d", { willReadFrequently: true });
  // Transparent mask pixels count as black, as the service reads them.
  grayCtx.fillStyle = "#000";
  grayCtx.fillRect(0, 0, width, height);
  grayCtx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const source = grayCtx.getImageData(0, 0, width, height).data;
  const tinted = new ImageData(width, height);
  const target = tinted.data;
  let covered = 0;
  for (let i = 0; i < source.length; i += 4) {
    const level = (source[i] * 299 + source[i + 1] * 587 + source[i + 2] * 114) / 1000;
    if (level > 0) {
      target[i] = TINT[0];
      target[i + 1] = TINT[1];
      target[i + 2] = TINT[2];
      target[i + 3] = level;
      covered += 1;
    }
  }
  const tint = document.createElement("canvas");
  tint.width = width;
  tint.height = height;
  tint.getContext("2d").putImageData(tinted, 0, 0);
  return { kind: "layer", gray, tint, coverage: covered / (width * height) };
}

els.loadMask.addEventListener("click", () => els.maskInput.click());
els.maskInput.addEventListener("change", async () => {
  const [file] = els.maskInput.files;
  els.maskInput.value = "";
  if (!file || !state.file) return;
  try {
    const layer = await maskLayer(file);
    pushOp(layer);
    setStatus(`Mask loaded: ${percent(layer.coverage)} of the image is marked for removal.`);
  } catch {
    showError("This browser cannot read that mask file.", `${file.name}: use a PNG or JPEG.`);
  }
});

// --- pointer: paint in the mask view, drag the split in the compare view ----------------

function imagePoint(event) {
  const box = els.wrap.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * state.width) / box.width,
    ((event.clientY - box.top) * state.height) / box.height,
  ];
}

function moveCursor(event) {
  const box = els.wrap.getBoundingClientRect();
  const diameter = (state.size * box.width) / state.width;
  els.cursor.hidden = false;
  els.cursor.style.left = `${event.clientX - box.left}px`;
  els.cursor.style.top = `${event.clientY - box.top}px`;
  els.cursor.style.width = `${diameter}px`;
  els.cursor.style.height = `${diameter}px`;
}

function splitFromPointer(event) {
  const box = els.wrap.getBoundingClientRect();
  applySplit(((event.clientX - box.left) / box.width) * 100);
}

els.wrap.addEventListener("pointerdown", (event) => {
  if (!state.file || event.button !== 0) return;
  event.preventDefault();
  els.wrap.setPointerCapture(event.pointerId);
  if (state.view === "compare") {
    state.comparing = true;
    splitFromPointer(event);
    return;
  }
  const point = imagePoint(event);
  state.stroke = {
    kind: "stroke",
    erase: state.tool === "eraser",
    size: state.size,
    points: [point],
  };
  drawSegment(state.stroke, point, point);
});

els.wrap.addEventListener("pointermove", (event) => {
  if (state.view === "compare") {
    if (state.comparing) splitFromPointer(event);
    return;
  }
  moveCursor(event);
  const stroke = state.stroke;
  if (!stroke) return;
  const events = event.getCoalescedEvents?.() ?? [event];
  for (const sample of events.length ? events : [event]) {
    const point = imagePoint(sample);
    drawSegment(stroke, stroke.points[stroke.points.length - 1], point);
    stroke.points.push(point);
  }
});

function endPointer() {
  state.comparing = false;
  if (!state.stroke) return;
  state.ops.push(state.stroke);
  state.stroke = null;
  updateButtons();
}

els.wrap.addEventListener("pointerup", endPointer);
els.wrap.addEventListener("pointercancel", endPointer);
els.wrap.addEventListener("pointerleave", () => {
  els.cursor.hidden = true;
});

// --- keyboard shortcuts ---------------------------------------------------------------

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement && target.type !== "range") return;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "b") setTool("brush");
  else if (event.key === "e") setTool("eraser");
  else if (event.key === "[") setSize(state.size / 1.25);
  else if (event.key === "]") setSize(state.size * 1.25);
  else if (event.key === "z" && state.file) setActualSize(!state.actualSize);
});

// --- calling the API ------------------------------------------------------------------

/**
 * POST `form` to `url` with the key; resolves to the reply, or null when the call did not
 * happen or got no answer (the page already says why). XMLHttpRequest rather than fetch:
 * only it reports upload progress.
 */
function call(url, form, { accept, label }) {
  const key = els.key.value.trim();
  if (!key) {
    showError(
      "Enter an API key first.",
      "Every call except health needs an X-API-Key header; keys are made with " +
        "`iopaint-api keys create`.",
    );
    els.key.focus();
    return Promise.resolve(null);
  }
  clearError();
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const started = performance.now();
    state.request = xhr;
    xhr.open("POST", url);
    xhr.responseType = "blob";
    xhr.setRequestHeader("X-API-Key", key);
    xhr.setRequestHeader("Accept", accept);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        setProgress(
          event.loaded / event.total,
          `${label}: uploading ${percent(event.loaded / event.total)} of ` +
            `${formatBytes(event.total)}`,
        );
      }
    });
    xhr.upload.addEventListener("load", () => setProgress(null, `${label}: processing`));
    const finish = (reply) => {
      state.request = null;
      stopProgress();
      updateButtons();
      resolve(reply);
    };
    xhr.addEventListener("load", () =>
      finish({
        ok: xhr.status >= 200 && xhr.status < 300,
        status: xhr.status,
        statusText: xhr.statusText,
        header: (name) => xhr.getResponseHeader(name),
        body: xhr.response,
        seconds: (performance.now() - started) / 1000,
      }),
    );
    xhr.addEventListener("error", () => {
      finish(null);
      showError(
        "Could not reach the service.",
        "The request failed before any answer came back: is the service running?",
      );
    });
    xhr.addEventListener("abort", () => {
      finish(null);
      setStatus("Canceled.");
    });
    startProgress(`${label}: uploading`);
    updateButtons();
    xhr.send(form);
  });
}

els.cancel.addEventListener("click", () => state.request?.abort());

function imageForm() {
  const form = new FormData();
  form.append("image", state.file, state.file.name || "image");
  return form;
}

async function detect() {
  if (!state.file || state.request) return;
  const form = imageForm();
  const reply = await call(ROUTES.detect, form, { accept: "application/json", label: "Detecting" });
  if (!reply) return;
  showResponse(reply);
  if (!reply.ok) {
    await showApiError(reply, "detect");
    return;
  }
  const found = JSON.parse(await reply.body.text());
  drawRegions(found.regions);
  showDetection(found);
  if (!found.regions.length) {
    setStatus("Nothing detected: paint the watermark by hand, then Remove.");
    return;
  }
  pushOp(await maskLayer(base64Png(found.mask_png)));
  setStatus(
    `Detected ${plural(found.regions.length, "region")} covering ` +
      `${percent(found.coverage)} of the image; correct the mask if needed, then Remove.`,
  );
}

async function remove() {
  if (!state.file || state.request) return;
  markUntilFirstResult(MARKS.pressed);
  const form = imageForm();
  if (hasMask()) {
    form.append("mask", await grayPng(mask), "mask.png");
  }
  if (els.profile.value) form.append("watermark", els.profile.value);
  markUntilFirstResult(MARKS.maskEncoded);
  const reply = await call(ROUTES.remove, form, { accept: "image/png", label: "Removing" });
  if (!reply) return;
  markUntilFirstResult(MARKS.answered);
  showResponse(reply);
  if (!reply.ok) {
    await showApiError(reply, "remove");
    return;
  }
  await showResult(reply.body);
  markUntilFirstResult(MARKS.shown);
  state.firstResultMarked = true;
  const server = reply.header("X-Processing-Time");
  setStatus(
    `Done in ${reply.seconds.toFixed(2)} s` +
      (server ? ` (${Number(server).toFixed(2)} s on the server)` : "") +
      (reply.header("X-Mask-Source") === "detected" ? ", with the mask the service detected" : "") +
      (REMOVALS[reply.header("X-Removal")] ?? "") +
      ". Drag across the image to compare before and after.",
  );
}

const REMOVALS = {
  deblend: ", the mark's blend inverted",
  mixed: ", the mark's blend inverted where it was thin enough, inpainted elsewhere",
  inpaint: "",
};

function markUntilFirstResult(name) {
  if (!state.firstResultMarked) performance.mark(name);
}

els.detect.addEventListener("click", detect);
els.remove.addEventListener("click", remove);

async function showResult(blob) {
  const url = URL.createObjectURL(blob);
  els.result.src = url;
  await els.result.decode();
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = url;
  const stem = (state.file.name || "image").replace(/\.[^.]*$/, "");
  els.download.href = url;
  els.download.download = `${stem}-clean.png`;
  els.download.hidden = false;
  updateButtons();
  setView("compare");
}

function clearResult() {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = null;
  els.result.removeAttribute("src");
  els.download.hidden = true;
  els.download.removeAttribute("href");
}

// --- watermark profiles ---------------------------------------------------------------

/** GET with the key (no upload, so fetch will do); the reply as `call` gives it, or null. */
async function getWithKey(url) {
  const key = els.key.value.trim();
  if (!key) {
    showError("Enter an API key first.", "Watermark profiles belong to a key (X-API-Key).");
    els.key.focus();
    return null;
  }
  const started = performance.now();
  try {
    const response = await fetch(url, { headers: { "X-API-Key": key, Accept: "application/json" } });
    return {
      ok: response.ok,
      status: response.status,
      statusText: response.statusText,
      header: (name) => response.headers.get(name),
      body: await response.blob(),
      seconds: (performance.now() - started) / 1000,
    };
  } catch {
    showError("Could not reach the service.", "The request failed before any answer came back.");
    return null;
  }
}

async function refreshProfiles(select = null) {
  const reply = await getWithKey(ROUTES.watermarks);
  if (!reply) return;
  if (!reply.ok) {
    await showApiError(reply, "watermarks");
    return;
  }
  const { watermarks } = JSON.parse(await reply.body.text());
  const chosen = select ?? els.profile.value;
  const options = [new Option("None: inpaint the mask", "")];
  for (const profile of watermarks) {
    const label = `${profile.name} (${profile.width} × ${profile.height}, ${profile.source})`;
    options.push(new Option(label, profile.id));
  }
  els.profile.replaceChildren(...options);
  els.profile.value = watermarks.some((profile) => profile.id === chosen) ? chosen : "";
  els.profileNote.textContent = `${plural(watermarks.length, "profile")} kept for this key.`;
}

els.refreshProfiles.addEventListener("click", () => refreshProfiles());
els.uploadProfile.addEventListener("click", () => els.profileInput.click());
els.profileInput.addEventListener("change", async () => {
  const [file] = els.profileInput.files;
  els.profileInput.value = "";
  if (!file || state.request) return;
  const form = new FormData();
  form.append("watermark", file, file.name || "watermark.png");
  const reply = await call(ROUTES.watermarks, form, {
    accept: "application/json",
    label: "Keeping the mark",
  });
  if (!reply) return;
  showResponse(reply);
  if (!reply.ok) {
    await showApiError(reply, "watermarks");
    return;
  }
  const profile = JSON.parse(await reply.body.text());
  await refreshProfiles(profile.id);
  setStatus(`Mark kept as ${profile.name}; Remove now inverts it.`);
});

// --- what the API said ----------------------------------------------------------------

const PLAIN_ERRORS = {
  400: "The service could not use this request.",
  401: "The API key was not accepted. Check the key above (sent as X-API-Key).",
  404: "The service has no such route.",
  405: "The service does not accept this method here.",
  408: "The upload stalled and the service stopped waiting for it.",
  413: "The upload is far too large for the service.",
  415: "The request was not a form upload.",
  422: "Nothing to remove was found in this image.",
  429: "The key's rate limit or quota is used up for now.",
  500: "The model failed on this image.",
  503: "The service is busy or starting up.",
};

async function showApiError(reply, route) {
  const text = await reply.body.text();
  let detail = "";
  try {
    detail = String(JSON.parse(text).detail ?? "");
  } catch {
    detail = text.slice(0, 300);
  }
  let message = PLAIN_ERRORS[reply.status] ?? `The service answered with status ${reply.status}.`;
  if (route === "detect" && reply.status === 404) {
    message = "This service has no detection yet: paint the watermark by hand.";
  }
  if (route === "remove" && reply.status === 404 && els.profile.value) {
    message = "That watermark profile is gone for this key: press Refresh.";
  }
  if (route === "watermarks" && reply.status === 400) {
    message = "The service could not use this file as a watermark profile.";
  }
  const retry = reply.header("Retry-After");
  if (retry && (reply.status === 429 || reply.status === 503)) {
    message += ` Try again in ${plural(Number(retry), "second")}.`;
  }
  const requestId = reply.header("X-Request-Id");
  showError(
    `${message} (HTTP ${reply.status})`,
    (detail ? `Server said: ${detail}` : "") + (requestId ? ` · request ${requestId}` : ""),
  );
  setStatus("");
}

function showResponse(reply) {
  const rows = [["Status", `${reply.status} ${reply.statusText}`.trim()]];
  rows.push(["Round trip", `${reply.seconds.toFixed(2)} s (upload, processing, download)`]);
  const header = reply.header;
  const seconds = header("X-Processing-Time");
  if (seconds) rows.push(["Processing time", `${Number(seconds).toFixed(3)} s (server)`]);
  const model = header("X-Model");
  if (model) rows.push(["Model", model]);
  const size = header("X-Image-Size");
  if (size) rows.push(["Image size", size.replace("x", " × ") + " px"]);
  const source = header("X-Mask-Source");
  if (source) rows.push(["Mask source", source]);
  const detected = header("X-Detected-Regions");
  if (detected) rows.push(["Detected regions", detected]);
  const removal = header("X-Removal");
  if (removal) rows.push(["Removal", removal]);
  const limit = header("X-RateLimit-Limit");
  const remaining = header("X-RateLimit-Remaining");
  if (limit !== null || remaining !== null) {
    rows.push(["Rate limit", `${remaining ?? "?"} of ${limit ?? "?"} requests left`]);
  }
  const reset = header("X-RateLimit-Reset");
  if (reset) {
    const at = new Date(Number(reset) * 1000);
    rows.push(["Limit full again", `${at.toLocaleTimeString()} (X-RateLimit-Reset ${reset})`]);
  }
  const retry = header("Retry-After");
  if (retry) rows.push(["Retry after", `${retry} s`]);
  const requestId = header("X-Request-Id");
  if (requestId) rows.push(["Request id", requestId]);
  els.response.replaceChildren(...rows.map(([name, value]) => responseRow(name, value)));
}

function responseRow(name, value) {
  const row = document.createElement("div");
  const term = document.createElement("dt");
  const data = document.createElement("dd");
  term.textContent = name;
  data.textContent = value;
  row.dataset.field = name;
  row.append(term, data);
  return row;
}

const SVG = "http://www.w3.org/2000/svg";

function drawRegions(regions) {
  const shapes = [];
  for (const region of regions) {
    const group = document.createElementNS(SVG, "g");
    const title = document.createElementNS(SVG, "title");
    title.textContent = describeRegion(region);
    group.append(title);
    const { x, y, width, height } = region.box;
    const box = document.createElementNS(SVG, "rect");
    box.setAttribute("class", "region-box");
    for (const [name, value] of Object.entries({ x, y, width, height })) {
      box.setAttribute(name, String(value));
    }
    group.append(box);
    if (region.outline?.length > 2) {
      const outline = document.createElementNS(SVG, "polygon");
      outline.setAttribute("class", "region-outline");
      outline.setAttribute("points", region.outline.map((p) => p.join(",")).join(" "));
      group.append(outline);
    }
    shapes.push(group);
  }
  els.regions.replaceChildren(...shapes);
  els.regionsList.replaceChildren(
    ...regions.map((region) => {
      const item = document.createElement("li");
      item.textContent = describeRegion(region);
      return item;
    }),
  );
}

function describeRegion(region) {
  const { x, y, width, height } = region.box;
  const text = region.text ? ` “${region.text}”` : "";
  const score = typeof region.score === "number" ? ` ${region.score.toFixed(2)}` : "";
  return `${region.kind}${score}${text} at ${x},${y} (${width} × ${height})`;
}

// The headers already gave the region count and the processing time; the body adds what
// only it holds.
function showDetection(found) {
  const shown = new Set([...els.response.children].map((row) => row.dataset.field));
  if (!shown.has("Detected regions")) {
    els.response.append(responseRow("Detected regions", String(found.regions.length)));
  }
  els.response.append(responseRow("Coverage", percent(found.coverage)));
  if (!shown.has("Processing time") && typeof found.processing_time === "number") {
    els.response.append(
      responseRow("Processing time", `${found.processing_time.toFixed(3)} s (server)`),
    );
  }
}

// --- status, progress, errors ---------------------------------------------------------

function setStatus(text) {
  els.status.textContent = text;
}

function startProgress(text) {
  const started = performance.now();
  state.phase = text;
  els.progressBox.hidden = false;
  els.progress.removeAttribute("value");
  const tick = () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    setStatus(`${state.phase}… ${seconds} s`);
  };
  tick();
  state.ticker = setInterval(tick, 200);
}

function setProgress(fraction, text) {
  state.phase = text;
  if (fraction === null) els.progress.removeAttribute("value");
  else els.progress.value = fraction;
}

function stopProgress() {
  clearInterval(state.ticker);
  state.ticker = null;
  els.progressBox.hidden = true;
  setStatus("");
}

function showError(message, detail) {
  els.errorMessage.textContent = message;
  els.errorDetail.textContent = detail;
  els.error.hidden = false;
}

function clearError() {
  els.error.hidden = true;
  els.errorMessage.textContent = "";
  els.errorDetail.textContent = "";
}

function updateButtons() {
  const loaded = state.file !== null;
  const busy = state.request !== null;
  els.detect.disabled = !loaded || busy;
  els.remove.disabled = !loaded || busy;
  els.cancel.hidden = !busy;
  els.undo.disabled = !state.ops.length;
  els.clear.disabled = !hasMask();
  els.loadMask.disabled = !loaded;
  els.zoom.disabled = !loaded;
  els.viewCompare.disabled = !state.resultUrl;
}

// --- the mask as an 8-bit gray PNG ----------------------------------------------------
//
// canvas.toBlob() encodes RGBA with a slow compressor, and was the slowest step between
// Remove and the result (docs/playground.md has the figures). The mask is one gray channel,
// mostly black: its scanlines go through the browser's own deflate (CompressionStream, zlib
// format, which is what a PNG's IDAT holds).

const PNG_SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const chunk = new Uint8Array(12 + data.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i += 1) chunk[4 + i] = type.charCodeAt(i);
  chunk.set(data, 8);
  view.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
  return chunk;
}

async function grayPng(canvas) {
  const { width, height } = canvas;
  const rgba = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const scanlines = new Uint8Array((width + 1) * height); // each row: filter byte 0, then gray
  for (let y = 0, source = 0, target = 0; y < height; y += 1) {
    target += 1;
    for (let x = 0; x < width; x += 1, source += 4, target += 1) scanlines[target] = rgba[source];
  }
  const deflated = new Blob([scanlines]).stream().pipeThrough(new CompressionStream("deflate"));
  const idat = new Uint8Array(await new Response(deflated).arrayBuffer());
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8); // 8 bits, grayscale, deflate, no filter method, no interlace
  return new Blob(
    [
      PNG_SIGNATURE,
      pngChunk("IHDR", header),
      pngChunk("IDAT", idat),
      pngChunk("IEND", new Uint8Array()),
    ],
    { type: "image/png" },
  );
}

// --- small words ----------------------------------------------------------------------

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function percent(fraction) {
  return `${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)} %`;
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

setSize(state.size);
updateButtons();
document.documentElement.dataset.ready = "true";
