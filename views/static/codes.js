/* Gatehouse recovery codes: copy them, or download them as a .txt file.
   Served from Gatehouse itself (the CSP allows no inline script); without
   JavaScript the buttons stay hidden and the codes can be selected by hand. */
(function () {
  'use strict';
  var list = document.getElementById('recovery-codes');
  var tools = document.getElementById('codes-tools');
  if (!list || !tools) return;
  var status = document.getElementById('codes-status');
  function say(text) {
    if (status) status.textContent = text;
  }
  function text() {
    var codes = [];
    list.querySelectorAll('code').forEach(function (c) {
      codes.push(c.textContent.trim());
    });
    return 'Gatehouse recovery codes (' + window.location.host + ')\nEach code works once.\n\n' + codes.join('\n') + '\n';
  }
  tools.hidden = false;
  document.getElementById('copy-codes').addEventListener('click', function () {
    if (!navigator.clipboard) return say('Copying is not available here: select the codes and copy them.');
    navigator.clipboard.writeText(text()).then(
      function () {
        say('The codes are copied.');
      },
      function () {
        say('Copying did not work: select the codes and copy them.');
      },
    );
  });
  document.getElementById('download-codes').addEventListener('click', function () {
    var url = window.URL.createObjectURL(new Blob([text()], { type: 'text/plain;charset=utf-8' }));
    var a = document.createElement('a');
    a.href = url;
    a.download = 'gatehouse-recovery-codes.txt';
    document.body.appendChild(a);
    a.click();
    a.remove();
    window.setTimeout(function () {
      window.URL.revokeObjectURL(url);
    }, 1000);
    say('The codes are downloaded as gatehouse-recovery-codes.txt.');
  });
})();
