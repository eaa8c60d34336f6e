// "Add a passkey" on the two-step page (WebAuthn Level 3 registration): ask the server for the options, let the
// browser and authenticator make the credential, send it back, then reload the list. Without JavaScript or
// WebAuthn the button stays disabled and the note beside it says why; renaming and removing are plain forms.
(function () {
  "use strict";

  const section = document.querySelector("[data-passkeys]");
  if (!section) return;
  const button = section.querySelector("[data-passkey-add]");
  const status = section.querySelector("[data-passkey-status]");
  const supported = window.PublicKeyCredential && navigator.credentials &&
    typeof navigator.credentials.create === "function";
  if (!supported) return;
  button.disabled = false;
  button.removeAttribute("aria-describedby");
  section.querySelector("[data-passkey-support]").hidden = true;

  const BROWSER_REFUSALS = {
    NotAllowedError: "Adding the passkey was cancelled or timed out. Try again when you are ready.",
    InvalidStateError: "This device or password manager already holds a passkey for your account.",
    NotSupportedError: "This browser or device cannot make a passkey Gatehouse accepts.",
    SecurityError: "Passkeys cannot be made on this address."
  };

  const post = window.gatehousePasskeyPost;  // static/js/passkey-requests.js, loaded first

  function toBytes(text) {
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(padded), function (c) { return c.charCodeAt(0); });
  }

  function toBase64url(buffer) {
    let binary = "";
    new Uint8Array(buffer).forEach(function (byte) { binary += String.fromCharCode(byte); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(json) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: (json.excludeCredentials || []).map(function (descriptor) {
        return Object.assign({}, descriptor, { id: toBytes(descriptor.id) });
      })
    });
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        attestationObject: toBase64url(response.attestationObject),
        transports: typeof response.getTransports === "function" ? response.getTransports() : []
      },
      clientExtensionResults: credential.getClientExtensionResults()
    };
  }

  // The first second factor brings recovery codes: shown here once, then "I have saved them" reloads the page.
  function showRecoveryCodes(codes) {
    const panel = section.querySelector("[data-passkey-codes]");
    const list = panel.querySelector("[data-passkey-codes-list]");
    codes.forEach(function (code) {
      const item = document.createElement("li");
      const text = document.createElement("code");
      text.textContent = code;
      item.appendChild(text);
      list.appendChild(item);
    });
    const file = "Gatehouse recovery codes\nEach code works once, in place of a 6-digit code.\n\n" + codes.join("\n") + "\n";
    panel.querySelector("[data-passkey-codes-download]").href = "data:text/plain;charset=utf-8," + encodeURIComponent(file);
    panel.hidden = false;
    button.hidden = true;
    panel.querySelector("[data-passkey-codes-title]").focus();
  }

  function say(message) {
    status.textContent = message;
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    say("Follow your browser's steps to make the passkey…");
    post(section.dataset.optionsUrl, "{}")
      .then(function (options) {
        return navigator.credentials.create({ publicKey: creationOptions(options) }).catch(function (error) {
          throw new Error(BROWSER_REFUSALS[error.name] || "The browser could not make the passkey. Try again.");
        });
      })
      .then(function (credential) {
        say("Saving the passkey…");
        return post(section.dataset.registerUrl, JSON.stringify(credentialJSON(credential)));
      })
      .then(function (answer) {
        if (answer.recovery_codes) {
          say("Passkey “" + answer.passkey.name + "” added.");
          showRecoveryCodes(answer.recovery_codes);
        } else {
          window.location.reload();
        }
      })
      .catch(function (error) {
        say(error.message);
        button.disabled = false;
      });
  });
})();
