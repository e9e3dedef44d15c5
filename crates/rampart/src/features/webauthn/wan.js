// The browser side of a WebAuthn ceremony on the framework's pages (served at
// SECURITY_WAN_SIGNIN_URL + ".js"): base64url <-> bytes, and the credential as the JSON string
// every finish posts (Flask-Security's wire format).
(function () {
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
  function creationOptions(o) {
    o.challenge = b64uToBuf(o.challenge);
    o.user.id = b64uToBuf(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return o;
  }
  function requestOptions(o) {
    o.challenge = b64uToBuf(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return o;
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
  window.rampartWebauthn = {
    create: function (options) {
      return navigator.credentials.create({ publicKey: creationOptions(options) }).then(credentialJson);
    },
    get: function (options, mediation) {
      var request = { publicKey: requestOptions(options) };
      if (mediation) request.mediation = mediation;
      return navigator.credentials.get(request).then(credentialJson);
    }
  };
  // A page with a begun ceremony finishes it: the form with data-wan-options posts the credential.
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-wan-options]");
    if (!form) return;
    var options = JSON.parse(form.getAttribute("data-wan-options"));
    var kind = form.getAttribute("data-wan-kind");
    var run = kind === "create" ? window.rampartWebauthn.create(options) : window.rampartWebauthn.get(options);
    run.then(function (json) {
      form.querySelector("input[name=credential]").value = json;
      form.submit();
    }).catch(function (err) {
      var p = document.getElementById("wan-error");
      if (p) p.textContent = "The passkey did not answer: " + err.message;
    });
  });
})();
