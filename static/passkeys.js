// Passkeys on the login and account pages (docs/REFERENCE.md §3.4, §3.6). Without this
// script, or without WebAuthn in the browser, the pages work as before and show no passkey
// controls. It asks the server for options (JSON), the browser for a credential, and posts
// the answer back as an ordinary form: the server answers it like any other form.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
    return;
  }

  function bytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      out[i] = raw.charCodeAt(i);
    }
    return out.buffer;
  }

  function text(buffer) {
    var view = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < view.length; i++) {
      raw += String.fromCharCode(view[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function show(box, message) {
    var error = box.querySelector(".passkey-error");
    if (error) {
      error.textContent = message;
      error.hidden = false;
    }
  }

  // The options for navigator.credentials, and the sealed state to send back.
  function options(url, csrf) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf_token: csrf }).toString()
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          throw new Error(body.error_description || "The server refused.");
        }
        return body;
      });
    });
  }

  function submit(form, state, credential) {
    form.querySelector("input[name=state]").value = state;
    form.querySelector("input[name=credential]").value = JSON.stringify(credential);
    form.submit();
  }

  // Sign in: a discoverable credential, no username.
  var signin = document.getElementById("passkey-signin");
  if (signin) {
    var form = signin.querySelector("form");
    signin.hidden = false;
    signin.querySelector("button").addEventListener("click", function () {
      var csrf = form.querySelector("input[name=csrf_token]").value;
      options(signin.getAttribute("data-options"), csrf)
        .then(function (body) {
          var pk = body.options.publicKey || body.options;
          pk.challenge = bytes(pk.challenge);
          (pk.allowCredentials || []).forEach(function (c) {
            c.id = bytes(c.id);
          });
          return navigator.credentials.get({ publicKey: pk }).then(function (c) {
            var r = c.response;
            submit(form, body.state, {
              id: c.id,
              type: c.type,
              authenticatorAttachment: c.authenticatorAttachment || null,
              authenticatorData: text(r.authenticatorData),
              clientDataJSON: text(r.clientDataJSON),
              signature: text(r.signature),
              userHandle: r.userHandle ? text(r.userHandle) : null,
              clientExtensionResults: {}
            });
          });
        })
        .catch(function (e) {
          show(signin, "No passkey signed you in: " + e.message);
        });
    });
  }

  // Register: a new passkey of the signed-in user, with the name typed.
  var register = document.getElementById("passkey-register");
  if (register) {
    var added = register.querySelector("form");
    register.hidden = false;
    added.addEventListener("submit", function (event) {
      if (added.querySelector("input[name=credential]").value) {
        return;
      }
      event.preventDefault();
      var csrf = added.querySelector("input[name=csrf_token]").value;
      options(register.getAttribute("data-options"), csrf)
        .then(function (body) {
          var pk = body.options.publicKey || body.options;
          pk.challenge = bytes(pk.challenge);
          pk.user.id = bytes(pk.user.id);
          (pk.excludeCredentials || []).forEach(function (c) {
            c.id = bytes(c.id);
          });
          return navigator.credentials.create({ publicKey: pk }).then(function (c) {
            var r = c.response;
            submit(added, body.state, {
              type: c.type,
              authenticatorAttachment: c.authenticatorAttachment || null,
              attestationObject: text(r.attestationObject),
              clientDataJSON: text(r.clientDataJSON),
              transports: r.getTransports ? r.getTransports() : [],
              clientExtensionResults: {}
            });
          });
        })
        .catch(function (e) {
          show(register, "No passkey was added: " + e.message);
        });
    });
  }
})();
