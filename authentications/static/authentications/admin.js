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

// Fields that do not apply to the type or credential chosen are hidden (admin.css), like
// the Entra step for the other credential; the server renders the stored choice's steps.
function bcFollowChoices(form) {
  var kind = form.querySelector("[name=kind]");
  var credential = form.querySelector("[name=credential_type]:checked");
  var certificate = !!credential && credential.value === "certificate";
  form.classList.toggle("bc-service-to-service", !!kind && kind.value === "service_to_service");
  form.classList.toggle("bc-certificate", certificate);
  if (!credential) { return; }
  form.querySelectorAll(".bc-when-secret").forEach(function (step) { step.hidden = certificate; });
  form.querySelectorAll(".bc-when-certificate").forEach(function (step) { step.hidden = !certificate; });
}
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("authentication_form");
  if (!form) { return; }
  bcFollowChoices(form);
  form.addEventListener("change", function () { bcFollowChoices(form); });
});
