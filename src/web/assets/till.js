// The till, improved: +/− buttons and a running total, a code field that is always ready for a
// scanner gun (digits then Enter, or no Enter: a full code submits by itself), full-width digits
// normalised, a keypad, the camera, one submit per basket. Without this file the form still
// works: the scanner types the digits and Enter.

const form = document.getElementById("till");
const code = document.getElementById("code");
for (const el of document.querySelectorAll(".js-only")) el.hidden = false;

// Full-width digits (U+FF10–FF19) from some scanner and IME setups become ASCII digits.
export function normalise(text) {
  return text.replace(/[\uFF10-\uFF19]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xff10 + 48))
    .replace(/[\s\u3000-]/g, "");
}

// The Damm check digit (the same quasigroup as the server's ledger/code.rs).
const DAMM = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];
function dammValid(digits) {
  let interim = 0;
  for (const d of digits) interim = DAMM[interim][d.charCodeAt(0) - 48];
  return interim === 0;
}

// A whole aixin code: the layout's length and prefix, and a valid check digit.
function isFullCode(digits) {
  if (!code) return false;
  const length = Number(code.dataset.length), prefix = code.dataset.prefix || "";
  return /^[0-9]+$/.test(digits) && digits.length === length && digits.startsWith(prefix) && dammValid(digits);
}

// One submit per basket: a double Enter, a second scan or a double click sends nothing more.
let sent = false;
if (form) {
  form.addEventListener("submit", (event) => {
    if (sent) { event.preventDefault(); return; }
    sent = true;
    for (const b of form.querySelectorAll("button[type=submit]")) b.disabled = true;
  });
}
function submitCode() {
  if (!form || sent) return;
  form.requestSubmit(document.getElementById("redeem"));
}

// Items: +/− buttons, the running total, the chosen look (a thicker border and the number).
function updateTotal() {
  let total = 0;
  for (const item of document.querySelectorAll(".item")) {
    const input = item.querySelector("input");
    const q = Math.max(0, Math.min(999, parseInt(normalise(input.value), 10) || 0));
    total += q * Number(item.dataset.price);
    item.classList.toggle("chosen", q > 0);
  }
  const el = document.getElementById("total");
  if (el) el.textContent = (total / 100).toFixed(2).replace(/\.00$/, "").replace(/(\.\d)0$/, "$1");
}
for (const item of document.querySelectorAll(".item")) {
  const input = item.querySelector("input");
  const row = item.querySelector(".qty");
  const lang = document.documentElement.lang;
  const make = (text, delta, label) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "quiet";
    b.textContent = text;
    b.setAttribute("aria-label", label + " " + item.querySelector(".name").textContent);
    b.addEventListener("click", () => {
      const q = Math.max(0, Math.min(999, (parseInt(input.value, 10) || 0) + delta));
      input.value = String(q);
      updateTotal();
      code?.focus();
    });
    return b;
  };
  row.prepend(make("−", -1, lang === "en" ? "One less" : "减一"));
  row.append(make("+", 1, lang === "en" ? "One more" : "加一"));
  input.addEventListener("input", updateTotal);
}
updateTotal();

// The code field: always focused unless another field is in use; a burst of keys faster than a
// person types (a scanner gun) that makes a full code submits by itself when it ends.
if (code) {
  // A scanner gun types a whole code in a burst (a few ms a key; WebDriver and busy machines
  // stretch that to ~30 ms); a person types > 100 ms a key. Judge by the burst's mean gap.
  let first = 0, keys = 0, timer = null;
  code.addEventListener("keydown", () => {
    const now = performance.now();
    if (code.value === "" || now - first > 2000) { first = now; keys = 0; }
    keys += 1;
  });
  const burst = () => keys >= 8 && (performance.now() - first) / (keys - 1) < 50;
  code.addEventListener("input", () => {
    const clean = normalise(code.value);
    if (clean !== code.value) code.value = clean;
    clearTimeout(timer);
    // A full code submits by itself (a scanner without Enter, or the last digit typed); a
    // scanner's long burst that is not ours (another app's payment code) goes to the server,
    // which names it without spending anything.
    if (isFullCode(clean)) timer = setTimeout(submitCode, burst() ? 80 : 300);
    else if (burst() && clean.length >= 16) timer = setTimeout(submitCode, 200);
  });
  document.addEventListener("click", (event) => {
    const t = event.target;
    if (!(t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t.closest("details"))) code.focus();
  });
  for (const b of document.querySelectorAll("#keypad button")) {
    b.addEventListener("click", () => {
      const k = b.dataset.key;
      if (k === "back") code.value = code.value.slice(0, -1);
      else if (k === "clear") code.value = "";
      else code.value += k;
      code.dispatchEvent(new Event("input"));
      code.focus();
    });
  }
}

// The camera: decoded in the page with the vendored decoder (never the browser's own
// BarcodeDetector alone, which Linux and Windows Chrome do not have).
const cameraButton = document.getElementById("camera");
if (cameraButton) {
  const off = document.getElementById("camera-off");
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    cameraButton.disabled = true;
    off.hidden = false;
  }
  cameraButton.addEventListener("click", async () => {
    try {
      const { scan } = await import("./scan.js");
      const video = document.getElementById("video");
      video.hidden = false;
      const text = await scan(video);
      video.hidden = true;
      const receipt = document.getElementById("receipt-text");
      if (code) {
        code.value = normalise(text);
        code.dispatchEvent(new Event("input"));
        if (!isFullCode(code.value)) submitCode();
      } else if (receipt) {
        // The refund page: the receipt's QR code carries its signed text.
        receipt.value = text.trim();
        receipt.form.requestSubmit();
      }
    } catch (error) {
      off.hidden = false;
    }
  });
}

// The receipt page: print (the page's print stylesheet fits the shop's paper).
const print = document.getElementById("print");
if (print) print.addEventListener("click", () => window.print());
