// Kabuto console: analysts' passkey ceremonies (enrolment and sign-in) and
// live updates of the case pages. No inline script, so the
// Content-Security-Policy stays strict.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);

  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64url(buf) {
    const bytes = new Uint8Array(buf);
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map((c) => Object.assign({}, c, { id: b64urlToBuf(c.id) }));
  }
  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await r.json(); } catch (e) { data = { error: "bad_answer", message: "Unexpected answer from the server. · サーバーから予期しない応答がありました。" }; }
    data.status = r.status;
    return data;
  }
  function show(msg, bad) {
    const el = $("status");
    if (!el) return;
    el.textContent = msg || "";
    el.className = bad ? "err" : "ok";
    el.dataset.state = bad ? "error" : "ok";
  }

  async function enrol(ev) {
    ev.preventDefault();
    show("…", false);
    const begin = await post("/console/enrol/begin", { code: $("code").value });
    if (begin.error) return show(begin.message, true);
    const pk = Object.assign({}, begin.publicKey);
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: b64urlToBuf(pk.user.id) });
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    let c;
    try { c = await navigator.credentials.create({ publicKey: pk }); } catch (e) {
      return show("The passkey was not created. · パスキーを作成できませんでした。", true);
    }
    const done = await post("/console/enrol/finish", {
      ceremony: begin.ceremony,
      credential: {
        id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
        response: {
          clientDataJSON: bufToB64url(c.response.clientDataJSON),
          attestationObject: bufToB64url(c.response.attestationObject),
          transports: c.response.getTransports ? c.response.getTransports() : [],
        },
        clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      },
    });
    if (done.error) return show(done.message, true);
    show(done.message, false);
    location.href = done.redirect;
  }

  async function signIn() {
    show("…", false);
    const begin = await post("/console/passkey/begin", {});
    if (begin.error) return show(begin.message, true);
    const pk = Object.assign({}, begin.publicKey);
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.allowCredentials = descriptors(pk.allowCredentials);
    let c;
    try { c = await navigator.credentials.get({ publicKey: pk }); } catch (e) {
      return show("The passkey sign-in did not complete. · パスキーでのサインインが完了しませんでした。", true);
    }
    const done = await post("/console/passkey/finish", {
      ceremony: begin.ceremony, next: ($("next") || {}).value || "",
      credential: {
        id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
        response: {
          clientDataJSON: bufToB64url(c.response.clientDataJSON),
          authenticatorData: bufToB64url(c.response.authenticatorData),
          signature: bufToB64url(c.response.signature),
          userHandle: c.response.userHandle ? bufToB64url(c.response.userHandle) : null,
        },
        clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      },
    });
    if (done.error) return show(done.message, true);
    location.href = done.redirect;
  }

  // Live pages: the case list and a case page reload their live part every
  // few seconds without reloading the page (forms keep what was typed).
  async function live(el) {
    try {
      const r = await fetch(location.pathname, { credentials: "same-origin" });
      if (r.ok && r.headers.get("Content-Type").startsWith("text/html")) {
        const html = await r.text();
        const t = document.createElement("template");
        t.innerHTML = html;
        const fresh = t.content.getElementById("live");
        if (fresh) el.replaceWith(fresh);
      }
    } catch (e) { /* keep the page as it is */ }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if ($("enrol-form")) $("enrol-form").addEventListener("submit", enrol);
    if ($("passkey-signin")) $("passkey-signin").addEventListener("click", signIn);
    if ($("live") && $("live").dataset.live) setInterval(() => live($("live")), 5000);
  });
})();
