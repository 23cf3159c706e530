// The public receipt check (/verify): reads the receipt's QR code with the camera, decoded in
// the page by the vendored decoder (scan.js, as the refund page does), and submits its text.
// Without this file the page still works: paste the text and press the button.

for (const el of document.querySelectorAll(".js-only")) el.hidden = false;

const cameraButton = document.getElementById("camera");
if (cameraButton) {
  const off = document.getElementById("camera-off");
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    cameraButton.disabled = true;
    off.hidden = false;
  }
  cameraButton.addEventListener("click", async () => {
    const video = document.getElementById("video");
    try {
      const { scan } = await import("./scan.js");
      video.hidden = false;
      const text = await scan(video);
      video.hidden = true;
      const receipt = document.getElementById("receipt-text");
      receipt.value = text.trim();
      receipt.form.requestSubmit();
    } catch (error) {
      video.hidden = true;
      off.hidden = false;
    }
  });
}
