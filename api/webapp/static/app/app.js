// Browser app for the object detector: one request per picture, everything else client-side.
//
// The picture is sent once with a low score floor; the threshold slider and the label toggles
// only filter that answer, so moving them never costs another inference.
"use strict";

(() => {
  const FLOOR = 0.05; // lowest score requested from the server; the slider cannot go lower
  const $ = (id) => document.getElementById(id);
  const SVG_NS = $("overlay").namespaceURI;

  const state = {
    detections: [], // predictions at or above FLOOR, best first (the API's order)
    analysed: false, // true once the server answered for the current picture
    hidden: new Set(), // label ids switched off by the user
    request: 0, // id of the latest upload; answers to older ones are dropped
    photoUrl: null,
    stream: null,
    lastFile: null, // sent again once an API key is entered after a 401
    needsKey: false, // the last answer was a 401
  };
  // The key is asked for only when the server answers 401 (API_KEY set), kept for this tab only.
  const KEY_STORE = "object-detector-api-key";

  // --- colours: the same hue sequence as core/annotate.py, so both views agree ---
  function labelColour(labelId) {
    const h = (Number(labelId) * 0.618033988749895) % 1;
    const s = 0.85, v = 0.95;
    const i = Math.floor(h * 6), f = h * 6 - i;
    const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
    const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
    return [r, g, b].map((c) => Math.round(c * 255));
  }
  const css = (rgb) => `rgb(${rgb.join(" ")})`;
  const textOn = ([r, g, b]) => (0.2126 * r + 0.7152 * g + 0.0722 * b > 140 ? "#000" : "#fff");

  // --- small DOM helpers ---
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }
  function swatch(labelId) {
    const span = document.createElement("span");
    span.className = "swatch";
    span.style.backgroundColor = css(labelColour(labelId));
    return span;
  }
  const pct = (x) => `${Math.round(x * 100)}%`;

  function setStatus(text) { $("status").textContent = text; }
  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }
  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  // --- filtering ---
  const threshold = () => Number($("threshold").value);
  const aboveThreshold = () => state.detections.filter((d) => d.probability >= threshold());
  const visible = () => aboveThreshold().filter((d) => !state.hidden.has(d.label_id));

  // --- rendering ---
  function render() {
    $("threshold-value").textContent = threshold().toFixed(2);
    renderToggles();
    const shown = visible();
    drawBoxes(shown);
    renderList(shown);
  }

  function renderToggles() {
    // One checkbox per label found at this threshold, plus any the user switched off, so they
    // can always switch it back on. Rebuilt only when that set changes, so focus is kept.
    const labels = new Map();
    for (const d of state.detections) {
      if (d.probability >= threshold() || state.hidden.has(d.label_id)) {
        const seen = labels.get(d.label_id);
        labels.set(d.label_id, { name: d.label, count: (seen ? seen.count : 0) + (d.probability >= threshold() ? 1 : 0) });
      }
    }
    const box = $("label-toggles");
    const key = [...labels.keys()].join(",");
    if (box.dataset.key !== key) {
      box.dataset.key = key;
      box.replaceChildren();
      for (const id of labels.keys()) {
        const label = document.createElement("label");
        const input = document.createElement("input");
        input.type = "checkbox";
        input.value = id;
        input.checked = !state.hidden.has(id);
        input.addEventListener("change", () => {
          if (input.checked) state.hidden.delete(id); else state.hidden.add(id);
          render();
        });
        const text = document.createElement("span");
        label.append(input, swatch(id), text);
        box.append(label);
      }
    }
    for (const label of box.children) {
      const id = label.querySelector("input").value;
      const { name, count } = labels.get(id);
      label.querySelector("span:last-child").textContent = `${name} (${count})`;
    }
    $("label-filter").hidden = labels.size === 0;
  }

  // Labels follow the rule of the annotated images (core/model/annotate.py, place_labels): best
  // score first, each at the first candidate spot, clamped into the picture, that overlaps no label
  // placed before it; a label with no room left is left out (its box and list entry stay).
  // Rectangles are [left, top, right, bottom] in whole pixels.
  function placeLabel(box, tw, th, w, h, placed) {
    if (tw > w || th > h) return null;
    const [left, top, right, bottom] = box;
    const at = (x, y) => {
      const cx = Math.max(0, Math.min(x, w - tw)), cy = Math.max(0, Math.min(y, h - th));
      return [cx, cy, cx + tw, cy + th];
    };
    const hits = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
    const free = (r) => !placed.some((p) => hits(r, p));
    // Above the top-left corner, inside it, below the box, inside its bottom; then the right side.
    const candidates = [
      at(left, top - th), at(left, top), at(left, bottom), at(left, bottom - th),
      at(right - tw, top - th), at(right - tw, top), at(right - tw, bottom), at(right - tw, bottom - th),
    ];
    for (let y = top + th; y < bottom - th; y += th) candidates.push(at(left, y), at(right - tw, y));
    const first = candidates.find(free);
    if (first) return first;
    // Last: the free spot nearest the box's top-left corner, against placed labels or the edges.
    const xs = new Set([0, w - tw, left, right - tw, ...placed.map((p) => p[2]), ...placed.map((p) => p[0] - tw)]);
    const ys = new Set([0, h - th, top - th, top, ...placed.map((p) => p[3]), ...placed.map((p) => p[1] - th)]);
    const spots = [];
    for (const x of xs) for (const y of ys) spots.push(at(x, y));
    const distance = (r) => Math.abs(r[0] - left) + Math.abs(r[1] - (top - th));
    spots.sort((a, b) => distance(a) - distance(b) || a[0] - b[0] || a[1] - b[1]);
    return spots.find(free) || null;
  }

  function drawBoxes(list) {
    const img = $("photo"), overlay = $("overlay");
    const w = img.clientWidth, h = img.clientHeight;
    overlay.setAttribute("width", w);
    overlay.setAttribute("height", h);
    overlay.setAttribute("viewBox", `0 0 ${w} ${h}`);
    overlay.replaceChildren();
    if (!w || !h || !img.naturalWidth) return; // not displayed yet: the resize observer calls again
    const font = Math.max(11, Math.min(18, Math.round(Math.min(w, h) / 28)));
    // Boxes under labels, so no outline crosses a label.
    const boxes = svg("g", {}), labels = svg("g", {});
    overlay.append(boxes, labels);
    // Whole pixels that are surely inside the picture (clientWidth rounds a fractional width up or down).
    const shown = img.getBoundingClientRect(), iw = Math.floor(shown.width), ih = Math.floor(shown.height);
    const placed = [], failed = []; // failed: label sizes that fitted nowhere (nothing as large fits later)
    const ranked = [...list].sort((a, b) => b.probability - a.probability);
    for (const d of [...ranked].reverse()) { // the best detection's outline on top
      const [ymin, xmin, ymax, xmax] = d.detection_box;
      boxes.append(svg("rect", {
        class: "box", "data-label": d.label, x: xmin * w, y: ymin * h, width: (xmax - xmin) * w, height: (ymax - ymin) * h,
        stroke: css(labelColour(d.label_id)),
      }));
    }
    for (const d of ranked) {
      const [ymin, xmin, ymax, xmax] = d.detection_box;
      const rgb = labelColour(d.label_id);
      const group = svg("g", { class: "tag", "data-label": d.label });
      const tag = svg("rect", { fill: css(rgb) });
      const text = svg("text", { "font-size": font, fill: textOn(rgb) });
      text.textContent = `${d.label} ${d.probability.toFixed(2)}`;
      group.append(tag, text);
      labels.append(group); // in the page, so the text can be measured
      const pad = 3, tw = Math.ceil(text.getComputedTextLength()) + 2 * pad, th = font + 2 * pad;
      const box = [Math.round(xmin * w), Math.round(ymin * h), Math.round(xmax * w), Math.round(ymax * h)];
      const hopeless = failed.some(([fw, fh]) => tw >= fw && th >= fh);
      const rect = hopeless ? null : placeLabel(box, tw, th, Math.min(w, iw), Math.min(h, ih), placed);
      if (!rect && !hopeless) failed.push([tw, th]);
      if (!rect) {
        group.remove();
        continue;
      }
      placed.push(rect);
      for (const [k, v] of Object.entries({ x: rect[0], y: rect[1], width: tw, height: th })) tag.setAttribute(k, v);
      text.setAttribute("x", rect[0] + pad);
      text.setAttribute("y", rect[1] + pad);
    }
  }

  function renderList(list) {
    const ol = $("detections");
    ol.replaceChildren();
    for (const d of list) {
      const [ymin, xmin, ymax, xmax] = d.detection_box;
      const li = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = d.label;
      li.append(swatch(d.label_id), name,
        ` ${Math.round(d.probability * 100)}% — left ${pct(xmin)}, top ${pct(ymin)}, ` +
        `width ${pct(xmax - xmin)}, height ${pct(ymax - ymin)}`);
      ol.append(li);
    }
    const empty = $("empty");
    empty.hidden = list.length > 0;
    if (!list.length) {
      empty.textContent = state.analysed
        ? `Nothing shown at a minimum score of ${threshold().toFixed(2)}.`
        : "No picture analysed yet.";
    }
  }

  // --- talking to the server ---
  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return {}; // not JSON (a proxy's HTML page, say): the caller reports the status instead
    }
  }

  async function detect(file) {
    const id = ++state.request;
    clearError();
    setStatus(`Detecting objects in ${file.name || "the picture"}…`);
    document.body.setAttribute("aria-busy", "true");
    showPhoto(file);
    state.lastFile = file;
    const form = new FormData();
    form.append("image", file, file.name || "image");
    form.append("threshold", String(FLOOR));
    const headers = { Accept: "application/json" };
    const key = $("api-key").value.trim();
    if (key) headers["X-API-Key"] = key;
    try {
      const response = await fetch("model/predict", { method: "POST", body: form, headers });
      const body = await readJson(response);
      if (id !== state.request) return; // a newer picture replaced this one meanwhile
      state.needsKey = response.status === 401;
      if (state.needsKey) {
        $("key-row").hidden = false;
        fail(`${body.message || "This server needs an API key."} Enter the key to send the picture again.`);
        $("api-key").focus();
        return;
      }
      if (!response.ok || body.status !== "ok") {
        fail(body.message || `The server answered ${response.status} ${response.statusText}`.trim());
        return;
      }
      state.detections = body.predictions;
      state.analysed = true;
      state.hidden.clear();
      const ms = response.headers.get("X-Processing-Time-Ms");
      $("timing").textContent = ms ? `Server processing time: ${Number(ms).toFixed(1)} ms` : "";
      setStatus(`${state.detections.length} candidate objects found (score ≥ ${FLOOR}).`);
      render();
    } catch (err) {
      if (id === state.request) fail(`Could not reach the server: ${err.message}`);
    } finally {
      if (id === state.request) document.body.removeAttribute("aria-busy");
    }
  }

  function fail(message) {
    state.detections = [];
    state.analysed = false;
    state.hidden.clear();
    $("figure").hidden = true;
    $("timing").textContent = "";
    setStatus("");
    showError(message);
    render();
  }

  function showPhoto(file) {
    if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
    state.photoUrl = URL.createObjectURL(file);
    state.detections = [];
    state.analysed = false;
    $("photo").src = state.photoUrl;
    $("figure").hidden = false;
    render();
  }

  // --- inputs: file picker, drag and drop, paste, camera ---
  function firstImage(files) {
    const list = [...(files || [])];
    return list.find((f) => f.type.startsWith("image/")) || list[0];
  }

  function wireInputs() {
    $("file-input").addEventListener("change", (e) => {
      const file = e.target.files[0];
      if (file) detect(file);
    });

    const zone = $("drop-zone");
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("dragging");
      const file = firstImage(e.dataTransfer.files);
      if (file) detect(file);
    });
    // A drop that misses the zone must not navigate away from the app.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());

    document.addEventListener("paste", (e) => {
      const file = firstImage(e.clipboardData && e.clipboardData.files);
      if (file) { e.preventDefault(); detect(file); }
    });

    $("threshold").addEventListener("input", render);

    const keyInput = $("api-key");
    keyInput.value = sessionStorage.getItem(KEY_STORE) || "";
    if (keyInput.value) $("key-row").hidden = false;
    keyInput.addEventListener("change", () => {
      const key = keyInput.value.trim();
      if (key) sessionStorage.setItem(KEY_STORE, key);
      else sessionStorage.removeItem(KEY_STORE);
      if (key && state.lastFile && state.needsKey) detect(state.lastFile);
    });

    const img = $("photo");
    img.addEventListener("load", render);
    img.addEventListener("error", () => {
      if (!$("figure").hidden) setStatus("This browser cannot display the picture; the detections are listed below.");
    });
    new ResizeObserver(() => drawBoxes(visible())).observe(img);
  }

  function wireCamera() {
    const media = navigator.mediaDevices;
    if (!media || typeof media.getUserMedia !== "function") return; // insecure origin or no camera API
    const start = $("camera-start"), panel = $("camera"), video = $("camera-video");
    start.hidden = false;

    const stop = () => {
      if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
      state.stream = null;
      video.srcObject = null;
      panel.hidden = true;
      start.hidden = false;
    };
    start.addEventListener("click", async () => {
      clearError();
      try {
        state.stream = await media.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      } catch (err) {
        showError(`The camera is not available: ${err.message || err.name}`);
        return;
      }
      video.srcObject = state.stream;
      panel.hidden = false;
      start.hidden = true;
      $("camera-snap").focus();
    });
    $("camera-stop").addEventListener("click", () => { stop(); start.focus(); });
    $("camera-snap").addEventListener("click", () => {
      if (!video.videoWidth) return; // no frame yet
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      canvas.toBlob((blob) => {
        if (blob) detect(new File([blob], "snapshot.jpg", { type: "image/jpeg" }));
      }, "image/jpeg", 0.92);
    });
  }

  async function showModel() {
    try {
      const response = await fetch("model/metadata", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const info = await response.json();
      $("model-info").textContent = `Model: ${info.name}${info.backend ? ` (${info.backend})` : ""}`;
    } catch {
      // The header line is decoration; detection still works without it.
    }
  }

  wireInputs();
  wireCamera();
  showModel();
  render();
})();
