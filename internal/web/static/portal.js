// Kabuto portal: passkey ceremonies, step-up and JSON forms. No inline
// script anywhere, so the Content-Security-Policy stays strict.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const en = document.body.dataset.lang === "en";
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
  function requestOptions(pk) {
    const o = Object.assign({}, pk);
    o.challenge = b64urlToBuf(pk.challenge);
    if (pk.allowCredentials) o.allowCredentials = pk.allowCredentials.map((c) => Object.assign({}, c, { id: b64urlToBuf(c.id) }));
    return o;
  }
  function creationOptions(pk) {
    const o = Object.assign({}, pk);
    o.challenge = b64urlToBuf(pk.challenge);
    o.user = Object.assign({}, pk.user, { id: b64urlToBuf(pk.user.id) });
    if (pk.excludeCredentials) o.excludeCredentials = pk.excludeCredentials.map((c) => Object.assign({}, c, { id: b64urlToBuf(c.id) }));
    return o;
  }
  function assertionJSON(c) {
    return {
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      response: {
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        authenticatorData: bufToB64url(c.response.authenticatorData),
        signature: bufToB64url(c.response.signature),
        userHandle: c.response.userHandle ? bufToB64url(c.response.userHandle) : null,
      },
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      authenticatorAttachment: c.authenticatorAttachment || undefined,
    };
  }
  function attestationJSON(c) {
    return {
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      response: {
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        attestationObject: bufToB64url(c.response.attestationObject),
        transports: c.response.getTransports ? c.response.getTransports() : [],
      },
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      authenticatorAttachment: c.authenticatorAttachment || undefined,
    };
  }

  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await r.json(); } catch (e) { data = { message: en ? "Unexpected answer from the server." : "サーバーから予期しない応答がありました。" }; }
    data.status = r.status;
    return data;
  }

  function show(msg, bad) {
    const el = $("result") || $("status");
    if (!el) return;
    el.textContent = msg || "";
    el.className = "result " + (bad ? "error" : "ok");
    el.dataset.state = bad ? "error" : "ok";
  }

  // afterOK runs instead of the usual ending once a step-up succeeds (the
  // fresh proof before enrolling a passkey in the middle of an action).
  let afterOK = null;
  // last is the action the page sent last, sent again once a passkey was
  // enrolled for it.
  let last = null;

  function finish(data) {
    if (data.step_up) return stepUp(data.step_up);
    if (data.error) { afterOK = null; show(data.message, true); return; }
    if (afterOK) { const f = afterOK; afterOK = null; return f(); }
    show(data.message, false);
    if (data.redirect) setTimeout(() => { location.href = data.redirect; }, data.message ? 700 : 0);
  }

  // The step-up ceremony: a passkey assertion over a challenge that commits
  // to this action, or a one-time code for customers without a passkey.
  async function stepUp(s) {
    const dlg = $("stepup");
    $("stepup-message").textContent = s.message || "";
    $("stepup-summary").textContent = s.summary || "";
    dlg.hidden = false;
    const close = () => { dlg.hidden = true; $("stepup-code").hidden = true; $("stepup-enrol").hidden = true; };
    $("stepup-cancel").onclick = () => { afterOK = null; close(); show(en ? "Cancelled. Nothing was done." : "中止しました。何も実行していません。", true); };
    if (s.kind === "enrol") {
      // Only a passkey approves this and the customer has none: enrol one
      // now, then send the action again to approve it with the passkey.
      $("stepup-enrol").hidden = false;
      $("stepup-enrol-start").onclick = () => { close(); enrolThen(last); };
      return;
    }
    if (s.kind === "passkey") {
      try {
        const cred = await navigator.credentials.get({ publicKey: requestOptions(s.publicKey) });
        close();
        finish(await post("/portal/api/step-up", { ceremony: s.ceremony, credential: assertionJSON(cred) }));
      } catch (e) {
        close();
        show(en ? "The passkey confirmation did not complete. Nothing was done." : "パスキーの確認が完了しませんでした。何も実行していません。", true);
      }
      return;
    }
    $("stepup-code").hidden = false;
    $("stepup-prompt").textContent = s.prompt || "";
    $("stepup-input").value = "";
    $("stepup-input").focus();
    $("stepup-submit").onclick = async () => {
      const code = $("stepup-input").value.trim();
      close();
      finish(await post("/portal/api/step-up", { ceremony: s.ceremony, code: code }));
    };
  }

  // Forms that talk JSON: data-api names the endpoint.
  document.querySelectorAll("form[data-api]").forEach((f) => {
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {};
      for (const el of f.elements) {
        if (!el.name || (el.type === "radio" && !el.checked)) continue;
        if (el.dataset.int !== undefined) { if (el.value !== "") body[el.name] = parseInt(el.value, 10); }
        else if (el.dataset.num !== undefined) { if (el.value !== "") body[el.name] = parseFloat(el.value); }
        else body[el.name] = el.value;
      }
      // A form with data-quote asks the server for what the action will
      // do (an order's estimated amount) and a form with data-confirm
      // states it; either way the customer confirms before it is sent.
      let question = null;
      if (f.dataset.quote) {
        const q = await post(f.dataset.quote, body);
        if (q.error) { show(q.message, true); return; }
        question = q.confirm;
      } else if (f.dataset.confirm !== undefined) {
        const chosen = f.querySelector("input[type=radio]:checked");
        question = f.dataset.confirm + (chosen && chosen.parentElement ? " " + chosen.parentElement.textContent.trim() : "");
      }
      if (question !== null && !(await confirmed(question))) {
        show(en ? "Cancelled. Nothing was done." : "中止しました。何も実行していません。", true);
        return;
      }
      show(en ? "Working…" : "処理中…", false);
      last = { url: f.dataset.api, body: body };
      finish(await post(f.dataset.api, body));
    });
  });

  // Plain forms with data-confirm are sent once the customer confirms.
  document.querySelectorAll("form[data-confirm]:not([data-api])").forEach((f) => {
    let sure = false;
    f.addEventListener("submit", async (ev) => {
      if (sure) return;
      ev.preventDefault();
      if (await confirmed(f.dataset.confirm)) { sure = true; f.submit(); }
    });
  });

  // confirmed shows question in the confirmation dialog and answers
  // whether the customer went ahead.
  function confirmed(question) {
    const dlg = $("confirm");
    $("confirm-message").textContent = question;
    dlg.hidden = false;
    return new Promise((resolve) => {
      $("confirm-yes").onclick = () => { dlg.hidden = true; resolve(true); };
      $("confirm-no").onclick = () => { dlg.hidden = true; resolve(false); };
    });
  }
  // Buttons that post: data-post names the endpoint.
  document.querySelectorAll("[data-post]").forEach((b) => {
    b.addEventListener("click", async (ev) => {
      ev.preventDefault();
      const body = {};
      if (b.dataset.id) body.id = b.dataset.id;
      if (b.dataset.all) body.all = true;
      finish(await post(b.dataset.post, body));
    });
  });

  // Passkey sign-in: autofill (conditional UI) on load, and the button.
  let abort = null;
  async function signin(conditional) {
    if (!window.PublicKeyCredential) return;
    if (abort) abort.abort();
    abort = new AbortController();
    const begin = await post("/portal/signin/passkey/begin");
    if (begin.error) { show(begin.message, true); return; }
    let cred;
    try {
      const opts = { publicKey: requestOptions(begin.publicKey), signal: abort.signal };
      if (conditional) opts.mediation = "conditional";
      cred = await navigator.credentials.get(opts);
    } catch (e) {
      if (!conditional) show(en ? "The passkey sign-in did not complete." : "パスキーでのログインが完了しませんでした。", true);
      return;
    }
    const res = await post("/portal/signin/passkey/finish", { ceremony: begin.ceremony, credential: assertionJSON(cred) });
    if (res.locked) {
      $("unlock-offer").hidden = false;
      $("unlock-message").textContent = res.message;
      $("unlock-yes").onclick = async () => finish(await post("/portal/signin/unlock", { token: res.token }));
      return;
    }
    finish(res);
  }
  if ($("passkey-signin")) {
    $("passkey-signin").addEventListener("click", () => signin(false));
    if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((ok) => { const q = new URLSearchParams(location.search);
        // Not right after signing out or an error, nor when asked not to (autofill=0).
        if (ok && q.get("autofill") !== "0" && q.get("out") !== "1" && !$("error")) signin(true); });
    }
  }

  // enrolThen enrols a passkey (after a fresh proof when one is asked
  // for) and then sends action again.
  async function enrolThen(action) {
    const begin = await post("/portal/api/passkeys/begin");
    if (begin.step_up) { afterOK = () => enrolThen(action); return stepUp(begin.step_up); }
    if (begin.error) return finish(begin);
    let fin;
    try {
      const cred = await navigator.credentials.create({ publicKey: creationOptions(begin.publicKey) });
      fin = await post("/portal/api/passkeys/finish", { ceremony: begin.ceremony, credential: attestationJSON(cred), name: "" });
    } catch (e) {
      show(en ? "The passkey was not created. Nothing was done." : "パスキーを作成できませんでした。何も実行していません。", true);
      return;
    }
    if (fin.error || !action) return finish(fin);
    finish(await post(action.url, action.body));
  }

  // Passkey enrolment.
  if ($("passkey-enrol")) {
    $("passkey-enrol").addEventListener("click", async () => {
      const begin = await post("/portal/api/passkeys/begin");
      if (begin.step_up || begin.error) return finish(begin);
      try {
        const cred = await navigator.credentials.create({ publicKey: creationOptions(begin.publicKey) });
        finish(await post("/portal/api/passkeys/finish", { ceremony: begin.ceremony, credential: attestationJSON(cred), name: $("passkey-name").value }));
      } catch (e) {
        show(en ? "The passkey was not created." : "パスキーを作成できませんでした。", true);
      }
    });
  }

  // TOTP enrolment.
  if ($("totp-begin")) {
    let pending = null;
    $("totp-begin").addEventListener("click", async () => {
      const r = await post("/portal/api/totp/begin");
      if (r.step_up || r.error) return finish(r);
      pending = r;
      $("totp-secret").textContent = r.secret;
      $("totp-setup").hidden = false;
    });
    $("totp-confirm").addEventListener("click", async () => {
      finish(await post("/portal/api/totp/confirm", { secret: pending.secret, token: pending.token, code: $("totp-code").value.trim() }));
    });
  }
})();
