// The demo page: every button is one or two calls of the API on this origin, as any client makes them.
"use strict";

const API = "/api/auth/";
const $ = (selector) => document.querySelector(selector);

function show(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// One API call: JSON in and out, the session cookie sent by the browser. Errors show `message`.
async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    show(data.message || data.detail || `Error ${response.status}`, true);
  }
  return { ok: response.ok, status: response.status, data };
}

function showState(state) {
  $("#signed-out").hidden = state !== "anonymous";
  $("#pending").hidden = state !== "pending";
  $("#account").hidden = state !== "full";
}

function showRecoveryCodes(codes) {
  const list = $("#recovery-codes");
  list.replaceChildren(...codes.map((code) => Object.assign(document.createElement("li"), { textContent: code })));
  $("#recovery").hidden = false;
}

// The account card, from GET me and GET passkeys; a 401/403 means the session is not full.
async function refresh() {
  const me = await fetch(API + "me", { credentials: "same-origin" });
  if (!me.ok) {
    showState(me.status === 403 ? "pending" : "anonymous");
    return;
  }
  const { user } = await me.json();
  showState("full");
  $("#account-name").textContent = user.name;
  $("#account-email").textContent = user.email;
  $("#otp-state").textContent = user.otp_enabled ? "on" : "off";
  $("#passkey-count").textContent = String(user.passkeys);
  $("#recovery-left").textContent = String(user.recovery_codes_left);
  const listed = await api("GET", "passkeys");
  if (listed.ok) {
    $("#passkeys").replaceChildren(...listed.data.passkeys.map(passkeyItem));
  }
}

function passkeyItem(passkey) {
  const item = document.createElement("li");
  item.dataset.id = passkey.id;
  const name = Object.assign(document.createElement("strong"), { textContent: passkey.name });
  const used = passkey.last_used_at ? new Date(passkey.last_used_at).toLocaleString() : "never";
  const meta = Object.assign(document.createElement("span"), {
    className: "meta",
    textContent: ` added ${new Date(passkey.created_at).toLocaleString()}, last used ${used}` +
      (passkey.backed_up ? ", synced" : ""),
  });
  const newName = Object.assign(document.createElement("input"), {
    className: "new-name", maxLength: 64, placeholder: "New name",
  });
  newName.setAttribute("aria-label", `New name for ${passkey.name}`);
  const rename = Object.assign(document.createElement("button"), { type: "button", className: "rename", textContent: "Rename" });
  rename.addEventListener("click", () => act(async () => {
    const result = await api("PATCH", `passkeys/${passkey.id}`, { name: newName.value });
    if (result.ok) show("Renamed");
  }));
  const remove = Object.assign(document.createElement("button"), { type: "button", className: "remove", textContent: "Remove" });
  remove.addEventListener("click", () => act(async () => {
    const token = $("#otp-code").value.trim();
    const result = await api("DELETE", `passkeys/${passkey.id}`, token ? { token } : {});
    if (result.ok) show("Passkey removed");
  }));
  item.append(name, meta, document.createElement("br"), newName, rename, remove);
  return item;
}

function passkeysAvailable() {
  if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) return true;
  show("This browser cannot use passkeys", true);
  return false;
}

// Options from the API, the browser's passkey dialog, the answer back to the API.
async function provePasskey() {
  if (!passkeysAvailable()) return false;
  const options = await api("POST", "passkeys/authentication/options");
  if (!options.ok) return false;
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.data.publicKey);
  const credential = await navigator.credentials.get({ publicKey });
  const result = await api("POST", "passkeys/authentication", { credential: credential.toJSON() });
  if (result.ok) show(`Passkey accepted: signed in as ${result.data.user.email}`);
  return result.ok;
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
  show(`Passkey "${result.data.passkey.name}" added`);
  if (result.data.recovery_codes) showRecoveryCodes(result.data.recovery_codes);
}

// Runs an action, shows what the browser refused (a cancelled passkey dialog, say), then refreshes.
async function act(action) {
  try {
    await action();
  } catch (error) {
    show(error.message || String(error), true);
  }
  await refresh();
}

const actions = {
  "#register": async () => {
    const result = await api("POST", "register", {
      email: $("#register-email").value, name: $("#register-name").value, password: $("#register-password").value,
    });
    if (result.ok) {
      show(result.data.message);
      $("#login-email").value = $("#register-email").value;
    }
  },
  "#login": async () => {
    const result = await api("POST", "login", { email: $("#login-email").value, password: $("#login-password").value });
    if (result.ok) show(result.data.user.two_factor_enabled ? "Password accepted: now the second factor" : "Logged in");
  },
  "#passkey-sign-in": provePasskey,
  "#passkey-second-factor": provePasskey,
  "#step-up": provePasskey,
  "#validate": async () => {
    const result = await api("POST", "otp/validate", { token: $("#code").value.trim() });
    if (result.ok) show("Code accepted");
  },
  "#logout": async () => {
    await api("POST", "logout");
    $("#recovery").hidden = true;
    show("Logged out");
  },
  "#otp-generate": async () => {
    const result = await api("POST", "otp/generate", {});
    if (!result.ok) return;
    $("#qr").src = result.data.qr_code;
    $("#otp-secret").textContent = result.data.base32;
    $("#otp-enrolment").hidden = false;
    show("Scan the QR code, then verify a code");
  },
  "#otp-verify": async () => {
    const result = await api("POST", "otp/verify", { token: $("#otp-code").value.trim() });
    if (!result.ok) return;
    $("#otp-enrolment").hidden = true;
    show("TOTP is on");
    if (result.data.recovery_codes) showRecoveryCodes(result.data.recovery_codes);
  },
  "#otp-disable": async () => {
    const token = $("#otp-code").value.trim();
    const result = await api("POST", "otp/disable", token ? { token } : {});
    if (result.ok) show("TOTP is off");
  },
  "#recovery-regenerate": async () => {
    const result = await api("POST", "otp/recovery-codes", { token: $("#otp-code").value.trim() });
    if (!result.ok) return;
    show("New recovery codes");
    showRecoveryCodes(result.data.recovery_codes);
  },
  "#passkey-add": addPasskey,
};

for (const [selector, action] of Object.entries(actions)) {
  $(selector).addEventListener("click", () => act(action));
}
refresh();
