// The demo page: every button is one or two calls of the API on this origin, as any client makes them.
"use strict";

const API = "/api/auth/";
const $ = (selector) => document.querySelector(selector);

function show(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// One API call: JSON in and out, the session cookie sent by the browser. A 2xx may have no body.
async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data, response };
}

// The same, showing the error's `message` in #status.
async function api(method, path, body) {
  const result = await call(method, path, body);
  if (!result.ok) show(errorMessage(result), true);
  return result;
}

function errorMessage({ status, data, response }) {
  let message = typeof data.message === "string" && data.message ? data.message
    : typeof data.detail === "string" ? data.detail : `Error ${status}`;
  const retry = response.headers.get("Retry-After");
  if (status === 429 && retry) message += ` (try again in ${retry} s)`;
  if (status === 403 && message.startsWith("Confirm with a code")) {
    message += ` (use "Confirm with a passkey" or "Confirm with the current code")`;
  }
  return message;
}

// What the browser itself refused: a closed passkey dialog, a network failure.
function describe(error) {
  if (error.name === "NotAllowedError") return "The passkey dialog was closed, timed out or not allowed";
  if (error.name === "InvalidStateError") return "This authenticator already holds a passkey for this account";
  return error.message || String(error);
}

function showState(state) {
  $("#signed-out").hidden = state !== "anonymous";
  $("#pending").hidden = state !== "pending";
  $("#account").hidden = state !== "full";
  if (state !== "full") forgetAccount();
}

// Nothing of the last account stays in the page once its session is gone.
function forgetAccount() {
  $("#otp-enrolment").hidden = true;
  $("#qr").removeAttribute("src");
  $("#otp-secret").textContent = "";
  $("#recovery").hidden = true;
  $("#recovery-codes").replaceChildren();
  $("#passkeys").replaceChildren();
  $("#otp-code").value = "";
  $("#passkey-name").value = "";
}

function showRecoveryCodes(codes) {
  const list = $("#recovery-codes");
  list.replaceChildren(...codes.map((code) => Object.assign(document.createElement("li"), { textContent: code })));
  $("#recovery").hidden = false;
}

// The card for the session's state, from GET me (401: none, 403: pending) and GET passkeys.
async function refresh() {
  const me = await call("GET", "me");
  if (me.status === 401 || me.status === 403) {
    showState(me.status === 403 ? "pending" : "anonymous");
    return;
  }
  if (!me.ok) {
    show(errorMessage(me), true);
    return;
  }
  const { user } = me.data;
  showState("full");
  $("#account-name").textContent = user.name;
  $("#account-email").textContent = user.email;
  $("#two-factor-state").textContent = user.two_factor_enabled ? "on" : "off";
  $("#otp-state").textContent = user.otp_enabled ? "on" : "off";
  $("#passkey-count").textContent = String(user.passkeys);
  $("#recovery-left").textContent = String(user.recovery_codes_left);
  // No passkey, nothing to list: this also keeps quiet where TWOFA_REQUIRED allows only enrolment.
  if (!user.passkeys) {
    $("#passkeys").replaceChildren();
    return;
  }
  const listed = await api("GET", "passkeys");
  if (listed.ok) $("#passkeys").replaceChildren(...listed.data.passkeys.map(passkeyItem));
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "never");

function element(tag, properties) {
  return Object.assign(document.createElement(tag), properties);
}

function passkeyItem(passkey) {
  const item = element("li");
  item.dataset.id = passkey.id;
  const name = element("strong", { className: "name", textContent: passkey.name });
  const meta = element("span", {
    className: "meta",
    textContent: ` added ${when(passkey.created_at)}, last used ${when(passkey.last_used_at)}, ` +
      `backed up: ${passkey.backed_up ? "yes" : "no"}`,
  });
  const newName = element("input", { className: "new-name", maxLength: 64, placeholder: "New name" });
  newName.setAttribute("aria-label", `New name for ${passkey.name}`);
  const rename = element("button", { type: "button", className: "rename", textContent: "Rename" });
  rename.setAttribute("aria-label", `Rename ${passkey.name}`);
  const remove = element("button", { type: "button", className: "remove", textContent: "Remove" });
  remove.setAttribute("aria-label", `Remove ${passkey.name}`);

  onClick(rename, async () => {
    const value = newName.value.trim();
    if (!value) {
      show("Type the new name first", true);
      newName.focus();
      return;
    }
    const result = await api("PATCH", `passkeys/${passkey.id}`, { name: value });
    if (result.ok) show(`Renamed to "${result.data.passkey?.name ?? value}"`);
  });
  onClick(remove, async () => {
    const token = $("#otp-code").value.trim();
    const result = await api("DELETE", `passkeys/${passkey.id}`, token ? { token } : {});
    if (!result.ok) return;
    if (token) $("#otp-code").value = "";
    show(result.data.user?.two_factor_enabled === false ? "Passkey removed: two-factor authentication is off" : "Passkey removed");
  });
  item.append(name, meta, element("br"), newName, rename, remove);
  return item;
}

function passkeysAvailable() {
  const credential = window.PublicKeyCredential;
  if (credential && typeof credential.parseCreationOptionsFromJSON === "function" &&
      typeof credential.parseRequestOptionsFromJSON === "function" &&
      typeof credential.prototype.toJSON === "function") {
    return true;
  }
  show("This browser cannot use passkeys", true);
  return false;
}

// Options from the API, the browser's passkey dialog, the answer back to the API. The same calls
// sign in (no session), prove the second factor (pending) or confirm again (full, step-up).
async function provePasskey(success) {
  if (!passkeysAvailable()) return;
  const options = await api("POST", "passkeys/authentication/options");
  if (!options.ok) return;
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.data.publicKey);
  const credential = await navigator.credentials.get({ publicKey });
  if (!credential) {
    show("No passkey was chosen", true);
    return;
  }
  const result = await api("POST", "passkeys/authentication", { credential: credential.toJSON() });
  if (result.ok) show(success(result.data.user));
}

async function addPasskey() {
  if (!passkeysAvailable()) return;
  const options = await api("POST", "passkeys/registration/options");
  if (!options.ok) return;
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.data.publicKey);
  const credential = await navigator.credentials.create({ publicKey });
  const name = $("#passkey-name").value.trim();
  const result = await api("POST", "passkeys/registration", { credential: credential.toJSON(), ...(name ? { name } : {}) });
  if (!result.ok) return;
  $("#passkey-name").value = "";
  show(`Passkey "${result.data.passkey?.name ?? name}" added`);
  if (result.data.recovery_codes) showRecoveryCodes(result.data.recovery_codes);
}

// A code field's value, or nothing when it is empty (the server then relies on a recent proof).
function tokenFrom(selector) {
  const token = $(selector).value.trim();
  return token ? { token } : {};
}

// Runs an action, shows what the browser refused, then refreshes the card. The button stays
// disabled meanwhile, so a double click sends nothing twice (a code or a challenge works once).
function onClick(button, action) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      show(describe(error), true);
    }
    try {
      await refresh();
    } catch (error) {
      show(describe(error), true);
    } finally {
      button.disabled = false;
    }
  });
}

const actions = {
  "#register": async () => {
    const result = await api("POST", "register", {
      email: $("#register-email").value, name: $("#register-name").value, password: $("#register-password").value,
    });
    if (!result.ok) return;
    show(result.data.message);
    $("#login-email").value = $("#register-email").value;
    $("#register-password").value = "";
  },
  "#login": async () => {
    const result = await api("POST", "login", { email: $("#login-email").value, password: $("#login-password").value });
    if (!result.ok) return;
    $("#login-password").value = "";
    show(result.data.user?.two_factor_enabled ? "Password accepted: now the second factor" : "Logged in");
  },
  "#passkey-sign-in": () => provePasskey((user) => `Signed in with a passkey as ${user?.email}`),
  "#passkey-second-factor": () => provePasskey((user) => `Passkey accepted: signed in as ${user?.email}`),
  "#validate": async () => {
    const result = await api("POST", "otp/validate", { token: $("#code").value.trim() });
    if (!result.ok) return;
    $("#code").value = "";
    show("Code accepted: signed in");
  },
  "#pending-cancel": async () => {
    await api("POST", "logout");
    $("#code").value = "";
    show("Log in again");
  },
  "#logout": async () => {
    await api("POST", "logout");
    show("Logged out");
  },
  "#step-up": () => provePasskey(() => "Confirmed with a passkey: factors can be changed for 15 minutes"),
  "#confirm-code": async () => {
    const result = await api("POST", "otp/validate", { token: $("#otp-code").value.trim() });
    if (!result.ok) return;
    $("#otp-code").value = "";
    show("Confirmed with a code: factors can be changed for 15 minutes");
  },
  "#otp-generate": async () => {
    // With TOTP on, a code of the secret in force lets it be replaced after the 15 minutes.
    const result = await api("POST", "otp/generate", tokenFrom("#otp-code"));
    if (!result.ok) return;
    $("#otp-code").value = "";
    $("#qr").src = result.data.qr_code;
    $("#otp-secret").textContent = result.data.base32;
    $("#otp-enrolment").hidden = false;
    show("Scan the QR code, then type a code of the new secret and verify it");
  },
  "#otp-verify": async () => {
    const result = await api("POST", "otp/verify", { token: $("#otp-code").value.trim() });
    if (!result.ok) return;
    $("#otp-code").value = "";
    $("#otp-enrolment").hidden = true;
    $("#qr").removeAttribute("src");
    $("#otp-secret").textContent = "";
    show("TOTP is on");
    if (result.data.recovery_codes) showRecoveryCodes(result.data.recovery_codes);
  },
  "#otp-disable": async () => {
    const result = await api("POST", "otp/disable", tokenFrom("#otp-code"));
    if (!result.ok) return;
    $("#otp-code").value = "";
    show(result.data.user?.two_factor_enabled
      ? "TOTP is off; passkeys still prove the second factor" : "TOTP is off");
  },
  "#recovery-regenerate": async () => {
    const result = await api("POST", "otp/recovery-codes", { token: $("#otp-code").value.trim() });
    if (!result.ok) return;
    $("#otp-code").value = "";
    show("New recovery codes: the old ones no longer work");
    showRecoveryCodes(result.data.recovery_codes || []);
  },
  "#passkey-add": addPasskey,
};

for (const [selector, action] of Object.entries(actions)) onClick($(selector), action);
refresh().catch((error) => show(describe(error), true));
