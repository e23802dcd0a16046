/* Gatehouse passkeys: the glue between the pages' forms and @simplewebauthn/browser
   (served as /static/webauthn.js). No inline script anywhere: the CSP allows only
   scripts from Gatehouse itself. Without JavaScript or WebAuthn the passkey
   buttons stay hidden and the pages work as before. */
(function () {
  'use strict';
  var W = window.SimpleWebAuthnBrowser;

  function say(form, text) {
    var el = document.getElementById(form.getAttribute('data-status') || '');
    if (el) el.textContent = text;
  }

  function send(form, answer) {
    form.querySelector('input[name="response"]').value = JSON.stringify(answer);
    form.submit();
  }

  function options(form) {
    try {
      return JSON.parse(form.getAttribute('data-options') || '');
    } catch (e) {
      return null;
    }
  }

  var supported = Boolean(W && W.browserSupportsWebAuthn());

  // Sign-in: the login page (browser autofill on the email field, and a button)
  // and the second-factor page (a button).
  document.querySelectorAll('form[data-passkey-sign-in]').forEach(function (form) {
    var optionsJSON = options(form);
    var button = document.getElementById(form.getAttribute('data-button') || '');
    if (!supported || !optionsJSON) return;
    if (button) {
      button.hidden = false;
      button.addEventListener('click', function () {
        say(form, 'Waiting for your passkey…');
        W.startAuthentication({ optionsJSON: optionsJSON }).then(
          function (answer) {
            say(form, 'Checking…');
            send(form, answer);
          },
          function () {
            say(form, 'The passkey was not used. You can try again.');
          },
        );
      });
    }
    if (form.hasAttribute('data-autofill')) {
      W.browserSupportsWebAuthnAutofill().then(function (ok) {
        if (!ok) return;
        W.startAuthentication({ optionsJSON: optionsJSON, useBrowserAutofill: true }).then(
          function (answer) {
            send(form, answer);
          },
          function () {
            /* cancelled, or replaced by the button's request */
          },
        );
      });
    }
  });

  // Registration: the account page's "Add a passkey" form.
  document.querySelectorAll('form[data-passkey-register]').forEach(function (form) {
    var optionsJSON = options(form);
    var fallback = document.getElementById(form.getAttribute('data-unsupported') || '');
    if (!supported || !optionsJSON) {
      form.hidden = true;
      if (fallback) fallback.hidden = false;
      return;
    }
    form.addEventListener('submit', function (event) {
      if (form.querySelector('input[name="response"]').value) return;
      event.preventDefault();
      say(form, 'Follow the steps your browser shows…');
      W.startRegistration({ optionsJSON: optionsJSON }).then(
        function (answer) {
          send(form, answer);
        },
        function () {
          say(form, 'No passkey was created. You can try again.');
        },
      );
    });
  });
})();
