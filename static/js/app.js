// Gatehouse's only hand-written script. Every page works without it: it turns confirmation pages into
// modals, enables the Custom policy inputs, and shows the expiry banner.
(function () {
  "use strict";

  const POLL_MILLISECONDS = 30 * 1000;
  const DISMISSED_KEY = "gatehouse.dismissed-expiry";

  // --- Confirmation dialogs: a link with data-opens="<dialog id>" opens it instead of navigating. ---
  document.addEventListener("click", function (event) {
    const trigger = event.target.closest("[data-opens]");
    if (trigger) {
      const dialog = document.getElementById(trigger.dataset.opens);
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.returnFocusId = trigger.dataset.opens;
        dialog.showModal();
      }
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      closer.closest("dialog").close();
    }
  });

  // Focus goes back to the button that opened the dialog (Escape and Cancel alike).
  document.addEventListener("close", function (event) {
    const dialog = event.target;
    if (!(dialog instanceof HTMLDialogElement) || !dialog.returnFocusId) return;
    const trigger = document.querySelector('[data-opens="' + dialog.returnFocusId + '"]');
    if (trigger) trigger.focus();
  }, true);

  // After htmx replaces a region, move focus to its heading so keyboard and screen-reader users follow.
  document.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target && event.detail.target.isConnected
      ? event.detail.target
      : document.getElementById(event.detail.target.id);
    // A failed save lands on its error summary; a good one on the region's heading.
    const heading = target && (target.querySelector("[data-error-summary]") || target.querySelector("[data-focus-after-swap]"));
    if (heading) heading.focus();
    syncPolicyForms();
  });

  // --- Policy card: Custom's minute inputs are editable only when Custom is chosen; a preset shows its values. ---
  function syncPolicyForms() {
    document.querySelectorAll("[data-policy-form]").forEach(function (form) {
      const chosen = form.querySelector('input[name="preset"]:checked');
      const custom = chosen && chosen.value === "custom";
      const idle = form.querySelector('input[name="idle_minutes"]');
      const absolute = form.querySelector('input[name="absolute_minutes"]');
      [idle, absolute].forEach(function (input) { input.disabled = !custom; });
      if (chosen && !custom) {
        idle.value = chosen.dataset.idle;
        absolute.value = chosen.dataset.absolute;
      }
    });
  }
  // Errors from a failed Custom save say nothing about Strict or Standard: choosing one of them clears them.
  function clearStaleErrors(form) {
    form.querySelectorAll(".field--invalid").forEach(function (field) {
      field.classList.remove("field--invalid");
      const input = field.querySelector("[aria-invalid]");
      const error = field.querySelector(".field__error");
      if (input) {
        input.removeAttribute("aria-invalid");
        const described = (input.getAttribute("aria-describedby") || "").split(" ")
          .filter(function (id) { return id && (!error || id !== error.id); });
        if (described.length) input.setAttribute("aria-describedby", described.join(" "));
        else input.removeAttribute("aria-describedby");
      }
      if (error) error.remove();
    });
    const summary = form.closest("section") && form.closest("section").querySelector("[data-error-summary]");
    if (summary) summary.remove();
  }
  document.addEventListener("change", function (event) {
    if (event.target.name !== "preset") return;
    syncPolicyForms();
    if (event.target.value !== "custom") clearStaleErrors(event.target.form);
  });
  syncPolicyForms();

  // After a failed full-page form (error summary) or on the "everyone is signed out" page: start there, for
  // browsers that did not honour autofocus on a non-control.
  const focusFirst = document.querySelector("[data-error-summary], [data-focus-on-load]");
  if (focusFirst && (document.activeElement === document.body || document.activeElement === null)) focusFirst.focus();

  // --- Expiry banner: from 5 minutes before the nearer expiry; polling is not activity. ---
  const banner = document.getElementById("expiry-banner");
  if (!banner) return;
  let state = null;

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (error) {
      return "";
    }
  }

  // The server says why the session ended (signed out from another device, by the owner, ...); the sign-in
  // page maps that closed set of reasons to its notice.
  function goToSignIn(reason) {
    const url = new URL(banner.dataset.expiredUrl, window.location.href);
    if (reason) url.searchParams.set("reason", reason);
    window.location.assign(url.toString());
  }

  function receive(response) {
    if (response.status === 401) {
      return response.json().then(
        function (body) { goToSignIn(body.reason); },
        function () { goToSignIn(null); }
      );
    }
    if (!response.ok) return null;
    return response.json().then(function (status) {
      state = { status: status, receivedAt: Date.now() };
      render();
    });
  }

  function poll() {
    fetch(banner.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(receive)
      .catch(function () { /* offline: try again at the next poll */ });
  }

  function secondsLeft(field) {
    return state.status[field] - Math.floor((Date.now() - state.receivedAt) / 1000);
  }

  // Whole minutes only: the notice is an alert, and a per-second countdown would be read out every second.
  function describe(seconds) {
    if (seconds >= 60) return Math.ceil(seconds / 60) + " min";
    return "less than a minute";
  }

  function render() {
    if (!state) return;
    const idle = secondsLeft("idle_seconds_left");
    const absolute = secondsLeft("absolute_seconds_left");
    if (Math.min(idle, absolute) <= 0) return poll();  // the server decides; a 401 goes to /login
    const kind = absolute <= idle ? "absolute" : "idle";
    const left = Math.min(idle, absolute);
    const expiry = kind + ":" + state.status[kind + "_expires_at"];
    const show = left <= state.status.warn_before_seconds && sessionStorage.getItem(DISMISSED_KEY) !== expiry;
    banner.querySelectorAll("[data-kind]").forEach(function (notice) {
      const visible = show && notice.dataset.kind === kind;
      if (notice.hidden && !visible) return;
      if (!visible && notice.contains(document.activeElement)) document.getElementById("main").focus();
      notice.hidden = !visible;
      const countdown = notice.querySelector("[data-countdown]");
      if (visible && countdown.textContent !== describe(left)) countdown.textContent = describe(left);
    });
    banner.dataset.expiry = expiry;
  }

  banner.addEventListener("click", function (event) {
    if (event.target.closest("[data-dismiss]")) {
      sessionStorage.setItem(DISMISSED_KEY, banner.dataset.expiry);
      render();
    } else if (event.target.closest("[data-extend]")) {
      fetch(banner.dataset.extendUrl, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
        credentials: "same-origin",
      }).then(receive);
    }
  });

  poll();
  window.setInterval(poll, POLL_MILLISECONDS);
  window.setInterval(render, 1000);
})();
