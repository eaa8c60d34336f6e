// The recovery codes' "Copy" button: shown only where the clipboard can be written. Without JavaScript the
// codes stay readable on the page and "Download as .txt" still works.
(function () {
  "use strict";

  if (!navigator.clipboard || typeof navigator.clipboard.writeText !== "function") return;

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.hidden = false;
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const list = document.getElementById(button.dataset.copy);
    const codes = Array.from(list.querySelectorAll("code"), function (code) { return code.textContent.trim(); });
    const status = document.querySelector("[data-copy-status]");
    navigator.clipboard.writeText(codes.join("\n") + "\n").then(
      function () { status.textContent = "Copied " + codes.length + " codes to the clipboard."; },
      function () { status.textContent = "Could not copy. Select the codes, or download them as .txt."; }
    );
  });
})();
