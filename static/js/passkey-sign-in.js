// Signing in with a passkey: the "Sign in with a passkey" button and the e-mail field's autofill on /login (WebAuthn
// conditional mediation), and "Use a passkey" on /login/verify. The options come from the server, the browser and
// authenticator sign, the answer goes back as PublicKeyCredential.toJSON(). Pressing the button first aborts a pending
// autofill request, so both paths work on one page load. Without JavaScript or WebAuthn the button stays disabled and
// the note beside it says why; the password form is untouched.
(function () {
  "use strict";

  const button = document.querySelector("[data-passkey-sign-in]");
  if (!button) return;
  const status = document.querySelector("[data-passkey-sign-in-status]");
  const supported = window.PublicKeyCredential && navigator.credentials &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";
  if (!supported) return;
  button.disabled = false;
  button.removeAttribute("aria-describedby");
  const note = document.querySelector("[data-passkey-sign-in-support]");
  if (note) note.hidden = true;

  const optionsUrl = button.getAttribute("data-options-url");
  const answerUrl = button.getAttribute("data-answer-url");
  let pending = null;  // the AbortController of the autofill request waiting in the e-mail field

  const post = window.gatehousePasskeyPost;  // static/js/passkey-requests.js, loaded first

  function say(message) {
    if (status) status.textContent = message;
  }

  function signIn(mediation) {
    const controller = new AbortController();
    if (mediation) pending = controller;
    return post(optionsUrl, "{}").then(function (options) {
      const request = { publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options), signal: controller.signal };
      if (mediation) request.mediation = mediation;
      return navigator.credentials.get(request);
    }).then(function (credential) {
      if (!credential) return null;
      say("Signing you in…");
      return post(answerUrl, JSON.stringify(credential.toJSON())).then(function (answer) {
        window.location.assign(answer.redirect);
      });
    });
  }

  function failed(error) {
    if (error && error.name === "AbortError") return;  // replaced by the button's own request
    if (error && error.name === "NotAllowedError") {
      say("Signing in with a passkey was cancelled or timed out. Try again, or use your password.");
      return;
    }
    say(error && error.message ? error.message : "That did not work. Try again, or use your password.");
  }

  button.addEventListener("click", function () {
    if (pending) pending.abort();
    pending = null;
    say("");
    signIn(null).catch(failed);
  });

  // The e-mail field offers passkeys in its autofill where the browser supports it (conditional mediation).
  if (button.hasAttribute("data-autofill") && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (available) signIn("conditional").catch(failed);
    });
  }
})();
