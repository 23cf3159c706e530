// The resident's code page, like a 付款码: the code is made on this phone from the credential
// secret provisioned at sign-in (so it keeps refreshing with no network), shown as a Code 128
// barcode, a QR code and grouped digits, renewed at every 30-second step; the screen is kept
// awake where the browser allows; while online the page notices a redemption and says 兑换成功
// with the new balance, and moves on to a code the till has not seen.

import { codeOfStep, stepFor, secondsLeft, validInSeconds, grouped } from "./code.js";
import { svg as barcodeSvg } from "./code128.js";
import qrcode from "./vendor/qrcode-generator/qrcode.mjs";

const box = document.getElementById("code");
for (const el of document.querySelectorAll(".js-only")) el.hidden = false;

function qrSvg(digits) {
  const qr = qrcode(0, "M");
  qr.addData(digits, "Numeric");
  qr.make();
  const n = qr.getModuleCount(), quiet = 4, size = n + 2 * quiet;
  const ns = "http://www.w3.org/2000/svg";
  const el = document.createElementNS(ns, "svg");
  el.setAttribute("viewBox", `0 0 ${size} ${size}`);
  el.setAttribute("shape-rendering", "crispEdges");
  el.setAttribute("aria-hidden", "true");
  const bg = document.createElementNS(ns, "rect");
  bg.setAttribute("width", size); bg.setAttribute("height", size); bg.setAttribute("fill", "#fff");
  el.appendChild(bg);
  let d = "";
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d); path.setAttribute("fill", "#000");
  el.appendChild(path);
  return el;
}

if (box && box.dataset.secret) {
  const secret = box.dataset.secret;
  const number = Number(box.dataset.number);
  let lastUsed = box.dataset.lastUsed === "" ? null : Number(box.dataset.lastUsed);
  // The phone's clock may be off: keep the server's time as it was when the page was made.
  const offset = Number(box.dataset.serverNow) - Date.now() / 1000;
  const now = () => Date.now() / 1000 + offset;
  const en = document.documentElement.lang === "en";
  let shown = null;

  async function render() {
    const t = now();
    const step = stepFor(t, lastUsed);
    if (step !== shown) {
      const digits = await codeOfStep(secret, number, step);
      shown = step;
      box.dataset.digits = digits;
      document.getElementById("digits").textContent = grouped(digits);
      document.getElementById("barcode").replaceChildren(barcodeSvg(digits));
      document.getElementById("qr").replaceChildren(qrSvg(digits));
      document.getElementById("qr").setAttribute("aria-label", grouped(digits));
    }
    const wait = validInSeconds(t, lastUsed);
    const left = Math.max(1, Math.ceil(secondsLeft(t, lastUsed)));
    document.getElementById("left").textContent = wait > 0
      ? (en ? `Usable in ${wait} s` : `${wait} 秒后可用`)
      : (en ? `Changes in ${left} s` : `${left} 秒后更新`);
  }
  render();
  setInterval(render, 1000);

  // While online: did the till take the code? Then say so, show the new balance, move on.
  let points = box.dataset.points;
  setInterval(async () => {
    try {
      const r = await fetch("/me/code/status", { cache: "no-store", credentials: "same-origin" });
      if (!r.ok) return;
      const s = await r.json();
      if (s.last_used_step !== null && s.last_used_step !== lastUsed) {
        lastUsed = s.last_used_step;
        shown = null;
        render();
      }
      if (s.points !== points) {
        points = s.points;
        document.getElementById("done-points").textContent = points;
        document.getElementById("done").hidden = false;
      }
    } catch (_) {
      // Offline: the code goes on refreshing from the phone's own secret.
    }
  }, 3000);

  // Keep the screen on while the code is shown.
  async function stayAwake() {
    try { await navigator.wakeLock?.request("screen"); } catch (_) { /* not allowed here */ }
  }
  stayAwake();
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") stayAwake(); });
}
