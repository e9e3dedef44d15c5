// Passkeys for the sample app: the WebAuthn ceremonies over Rampart's (Flask-Security's) JSON
// API. Every finish posts the credential as a JSON string. No library, no CDN.
(function () {
  "use strict";

  function b64uToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64u(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function credentialJson(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: bufToB64u(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: bufToB64u(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64u(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = bufToB64u(r.authenticatorData);
      out.response.signature = bufToB64u(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64u(r.userHandle);
    }
    return JSON.stringify(out);
  }

  // A JSON request; resolves to {status, body} (the envelope's `response`).
  function api(method, url, csrf, body) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (csrf) headers["X-XSRF-Token"] = csrf;
    return fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        return { status: res.status, body: (json && json.response) || {} };
      });
    });
  }

  function firstError(body) {
    return (body.errors && body.errors[0]) || "Something went wrong. Please try again.";
  }

  function create(options) {
    options.challenge = b64uToBuf(options.challenge);
    options.user.id = b64uToBuf(options.user.id);
    (options.excludeCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return navigator.credentials.create({ publicKey: options }).then(credentialJson);
  }

  function get(options, mediation, signal) {
    options.challenge = b64uToBuf(options.challenge);
    (options.allowCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    var request = { publicKey: options };
    if (mediation) request.mediation = mediation;
    if (signal) request.signal = signal;
    return navigator.credentials.get(request).then(credentialJson);
  }

  // ---- The sign-in page: a button, and the browser's passkey autofill.
  function setUpSignIn(button) {
    var signinUrl = button.getAttribute("data-signin-url");
    var next = button.getAttribute("data-next") || "/";
    // Only a path on this site (never `//host` or `javascript:`).
    if (next.charAt(0) !== "/" || next.charAt(1) === "/" || next.charAt(1) === "\\") next = "/";
    var status = document.getElementById("passkey-status");
    var conditional = null;
    // Settles when the autofill request has ended (a browser refuses a second request while one
    // is still pending, and aborting one takes effect asynchronously).
    var conditionalDone = Promise.resolve();

    function say(text) { if (status) status.textContent = text; }

    // The session's CSRF token, when it has one (anonymous sign-ins need none).
    function xsrf() {
      var m = document.cookie.match(/(?:^|;\s*)XSRF-TOKEN=([^;]*)/);
      return m ? decodeURIComponent(m[1]) : null;
    }

    function signIn(mediation, signal) {
      return api("POST", signinUrl, xsrf(), {}).then(function (begun) {
        if (begun.status !== 200) throw new Error(firstError(begun.body));
        return get(begun.body.credential_options, mediation, signal).then(function (credential) {
          return api("POST", signinUrl + "/" + begun.body.wan_state, xsrf(), { credential: credential });
        });
      }).then(function (done) {
        if (done.status !== 200) throw new Error(firstError(done.body));
        if (done.body.tf_required) {
          window.location.assign(done.body.tf_signin_url || "/tf-validate");
        } else {
          window.location.assign(next);
        }
      });
    }

    button.addEventListener("click", function (event) {
      if (!window.PublicKeyCredential) return; // the link's page explains
      event.preventDefault();
      if (conditional) conditional.abort();
      conditional = null;
      say("Follow your browser's prompt…");
      conditionalDone.then(function () { return signIn(null); }).catch(function (err) {
        if (err && err.name === "AbortError") return;
        say(err && err.name === "NotAllowedError" ? "The passkey sign-in was cancelled." : err.message);
      });
    });

    // Passkey autofill (conditional mediation) on the identity field.
    if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available) return;
        conditional = new AbortController();
        conditionalDone = signIn("conditional", conditional.signal).catch(function () {});
      });
    }
  }

  // ---- The security page: list, add and remove passkeys.
  function setUpSettings(section) {
    var csrf = section.getAttribute("data-csrf");
    var registerUrl = section.getAttribute("data-register-url");
    var deleteUrl = section.getAttribute("data-delete-url");
    var renameUrl = section.getAttribute("data-rename-url");
    var verifyUrl = section.getAttribute("data-verify-url");
    var list = section.querySelector("[data-passkey-list]");
    var message = section.querySelector("[data-passkey-message]");
    var form = section.querySelector("form[data-passkey-add]");

    function say(text, bad) {
      message.textContent = text || "";
      message.className = bad ? "field-error" : "muted";
    }

    function when(iso) {
      if (!iso) return "never";
      var d = new Date(iso + "Z");
      return isNaN(d) ? iso : d.toLocaleString();
    }

    function needsFresh(result) {
      if (result.status === 401 && result.body.reauth_required) {
        say("");
        var p = document.createElement("p");
        var a = document.createElement("a");
        a.href = verifyUrl + "?next=" + encodeURIComponent(window.location.pathname);
        a.textContent = "Confirm it's you";
        p.appendChild(a);
        p.appendChild(document.createTextNode(" to manage your passkeys."));
        list.replaceChildren(p);
        return true;
      }
      return false;
    }

    function render(creds) {
      list.replaceChildren();
      if (!creds.length) {
        var none = document.createElement("p");
        none.className = "muted";
        none.textContent = "No passkeys yet.";
        list.appendChild(none);
        return;
      }
      var ul = document.createElement("ul");
      ul.className = "passkey-list";
      creds.forEach(function (cred) {
        var li = document.createElement("li");
        li.className = "passkey";
        var name = document.createElement("strong");
        name.textContent = cred.name;
        var meta = document.createElement("span");
        meta.className = "muted";
        meta.textContent = " · added " + when(cred.created) + " · last used " + when(cred.lastuse) +
          (cred.usage === "secondary" ? " · second factor" : "");
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "btn btn-outline btn-sm";
        remove.textContent = "Remove";
        remove.setAttribute("data-passkey-remove", cred.name);
        remove.addEventListener("click", function () {
          if (!window.confirm("Remove the passkey “" + cred.name + "”?")) return;
          api("POST", deleteUrl, csrf, { name: cred.name }).then(function (result) {
            if (needsFresh(result)) return;
            if (result.status !== 200) return say(firstError(result.body), true);
            say("Removed " + cred.name + ".");
            load();
          });
        });
        var rename = document.createElement("button");
        rename.type = "button";
        rename.className = "btn btn-outline btn-sm";
        rename.textContent = "Rename";
        rename.setAttribute("data-passkey-rename", cred.name);
        rename.addEventListener("click", function () {
          // An inline form in place of the name: type the new one, save.
          var edit = document.createElement("form");
          edit.className = "passkey-rename";
          var input = document.createElement("input");
          input.type = "text";
          input.name = "new_name";
          input.value = cred.name;
          input.maxLength = 64;
          input.setAttribute("aria-label", "New name for " + cred.name);
          var save = document.createElement("button");
          save.type = "submit";
          save.className = "btn btn-sm";
          save.textContent = "Save";
          edit.appendChild(input);
          edit.appendChild(document.createTextNode(" "));
          edit.appendChild(save);
          edit.addEventListener("submit", function (event) {
            event.preventDefault();
            var newName = input.value.trim();
            api("POST", renameUrl, csrf, { name: cred.name, new_name: newName }).then(function (result) {
              if (needsFresh(result)) return;
              if (result.status !== 200) return say(firstError(result.body), true);
              say("Renamed " + cred.name + " to " + newName + ".");
              load();
            });
          });
          li.replaceChildren(edit);
          input.focus();
        });
        li.appendChild(name);
        li.appendChild(meta);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(rename);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(remove);
        ul.appendChild(li);
      });
      list.appendChild(ul);
    }

    function load() {
      return api("GET", registerUrl, null).then(function (result) {
        if (needsFresh(result)) return;
        if (result.status !== 200) return say(firstError(result.body), true);
        render(result.body.registered_credentials || []);
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var name = form.querySelector("input[name=name]").value;
      var usageField = form.querySelector("input[name=usage]:checked");
      var usage = usageField ? usageField.value : "first";
      say("Follow your browser's prompt…");
      api("POST", registerUrl, csrf, { name: name, usage: usage }).then(function (begun) {
        if (needsFresh(begun)) return;
        if (begun.status !== 200) throw new Error(firstError(begun.body));
        return create(begun.body.credential_options).then(function (credential) {
          return api("POST", registerUrl + "/" + begun.body.wan_state, csrf, { credential: credential });
        }).then(function (done) {
          if (done.status !== 200) throw new Error(firstError(done.body));
          form.reset();
          say("Added " + name + ".");
          return load();
        });
      }).catch(function (err) {
        say(err && err.name === "NotAllowedError" ? "The passkey was not created." : err.message, true);
      });
    });

    if (!window.PublicKeyCredential) {
      form.hidden = true;
      say("This browser does not support passkeys.", true);
    }
    load();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("passkey-signin");
    if (button) setUpSignIn(button);
    var section = document.getElementById("passkeys");
    if (section) setUpSettings(section);
  });
})();
