// Passkeys in the browser: registration on the account page, passwordless sign-in (button and
// conditional UI), and the second factor. Served from /assets (the CSP allows no inline script).
// The server keeps every ceremony's state; this file only converts between JSON and the
// WebAuthn API's ArrayBuffers.
(() => {
  'use strict';
  const dec = (s) => {
    const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    return Uint8Array.from(b, (c) => c.charCodeAt(0)).buffer;
  };
  const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

  const creationOptions = ({ publicKey: pk }) => ({
    publicKey: {
      ...pk,
      challenge: dec(pk.challenge),
      user: { ...pk.user, id: dec(pk.user.id) },
      excludeCredentials: (pk.excludeCredentials || []).map((c) => ({ ...c, id: dec(c.id) })),
    },
  });
  const requestOptions = ({ publicKey: pk }) => ({
    publicKey: {
      ...pk,
      challenge: dec(pk.challenge),
      allowCredentials: (pk.allowCredentials || []).map((c) => ({ ...c, id: dec(c.id) })),
    },
  });
  const credentialJSON = (c) => {
    const r = c.response;
    const response = { clientDataJSON: enc(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = enc(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = enc(r.authenticatorData);
      response.signature = enc(r.signature);
      if (r.userHandle) response.userHandle = enc(r.userHandle);
    }
    return { id: c.id, rawId: enc(c.rawId), type: c.type, response, extensions: c.getClientExtensionResults() };
  };

  const post = async (url, body) => {
    const res = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.message || data.error_description || 'The passkey was not accepted.');
    return data;
  };
  const say = (msg) => {
    const el = document.getElementById('passkey-error');
    if (el) { el.textContent = msg; el.hidden = false; }
  };

  // The background (autofill) request, cancelled when the person uses a button instead: the
  // browser allows one pending request at a time. Its controller exists from the start, so a
  // button pressed while it still fetches its options keeps it from ever asking the browser.
  let pending = null;

  // Every passkey control carries its endpoints and form token as data attributes.
  async function run(el, mediation, signal) {
    const d = el.dataset;
    const extra = { csrf: d.csrf, interaction: d.interaction || '', return_to: d.returnTo || '' };
    const options = await post(d.options, extra);
    let credential;
    if (d.kind === 'register') {
      credential = await navigator.credentials.create(creationOptions(options));
    } else {
      const o = requestOptions(options);
      if (mediation) {
        if (signal.aborted) throw new DOMException('The background request was cancelled.', 'AbortError');
        o.mediation = mediation;
        o.signal = signal;
      }
      credential = await navigator.credentials.get(o);
    }
    const name = document.getElementById('passkey-name');
    const done = await post(d.finish, { ...extra, name: name ? name.value : '', response: credentialJSON(credential) });
    if (done.recovery_codes) {
      const list = document.getElementById('passkey-recovery');
      if (list) {
        list.hidden = false;
        const next = list.querySelector('a');
        if (next && done.redirect) next.href = done.redirect;
        const ul = list.querySelector('ul');
        done.recovery_codes.forEach((code) => {
          const li = document.createElement('li');
          const c = document.createElement('code');
          c.textContent = code;
          li.append(c);
          ul.append(li);
        });
        return;
      }
    }
    window.location.assign(done.redirect || window.location.href);
  }

  document.querySelectorAll('[data-passkey]').forEach((el) => {
    el.hidden = !window.PublicKeyCredential;
    el.addEventListener('click', () => {
      if (pending) {
        pending.abort();
        pending = null;
      }
      // A new attempt: the last one's error no longer describes what is happening.
      const shown = document.getElementById('passkey-error');
      if (shown) { shown.hidden = true; shown.textContent = ''; }
      run(el).catch((e) => say(e.message));
    });
  });
  // Enter in the passkey-name field must not submit its (script-only) form.
  document.querySelectorAll('form[data-passkey-form]').forEach((f) =>
    f.addEventListener('submit', (e) => e.preventDefault()));
  // Conditional UI: the browser offers passkeys in the username field's autofill.
  const auto = document.querySelector('[data-passkey-conditional]');
  if (auto && window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then((ok) => {
      // An aborted background request (the person clicked a button) is not an error.
      if (!ok) return;
      pending = new AbortController();
      run(auto, 'conditional', pending.signal).catch((e) => { if (e.name !== 'AbortError') say(e.message); });
    });
  }
})();
