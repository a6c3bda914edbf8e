// Copy buttons on the authentication change page (no inline script: CSP-friendly).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy-target]");
  if (!button) { return; }
  event.preventDefault();
  var source = document.getElementById(button.getAttribute("data-copy-target"));
  if (!source) { return; }
  var text = source.value || source.textContent;
  var done = function () {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    source.select && source.select();
    document.execCommand("copy");
    done();
  }
});
