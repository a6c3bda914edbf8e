"""The certificates of an authentication in its admin page: generate, upload, download,
switch to the next one, delete an old one.

The views are hooked into `AuthenticationAdmin.get_urls` by `urls`; the change page shows
them through `certificates_display`. The private key is never rendered or sent: only the
public certificate can be downloaded.
"""

from django.contrib import admin, messages
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import slugify
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from authentications.admin.connection_views import back_to, object_or_404, object_page
from authentications.admin.displays import fragment
from authentications.certificates import flows, keypairs
from authentications.certificates.forms import CertificateUploadForm
from authentications.certificates.models import Certificate

DOWNLOADS = {
    "cer": ("application/pkix-cert", "cer"),
    "pem": ("application/x-pem-file", "pem"),
}


def urls(model_admin):
    """The certificate views' URLs, behind the admin login, named like the admin's own."""
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}"
    routes = (
        ("certificates/generate/", generate, "certificate_generate"),
        ("certificates/upload/", upload, "certificate_upload"),
        ("certificates/switch/", switch, "certificate_switch"),
        ("certificates/<int:certificate_id>/delete/", delete, "certificate_delete"),
        (
            "certificates/<int:certificate_id>/download.<str:file_format>",
            download,
            "certificate_download",
        ),
    )
    return [
        path(
            f"<path:object_id>/{route}",
            model_admin.admin_site.admin_view(
                sensitive_post_parameters("client_secret", "password")(view)
            ),
            {"model_admin": model_admin},
            name=f"{prefix}_{name}",
        )
        for route, view, name in routes
    ]


def _certificates_fragment(obj, *, may_change):
    shown = list(obj.certificates.order_by("role", "-created_at"))
    return fragment(
        "certificates",
        authentication=obj,
        certificates=shown,
        may_change=may_change,
        has_current=any(c.role == Certificate.Role.CURRENT for c in shown),
        has_next=any(c.role == Certificate.Role.NEXT for c in shown),
        valid_months=flows.validity_days() * 12 // 365,
    )


@admin.display(description="Certificates")
def certificates_display(obj):
    """The certificates with their thumbprints, validity and buttons, and the Entra steps."""
    return _certificates_fragment(obj, may_change=True)


@admin.display(description="Certificates")
def certificates_view_only(obj):
    """The certificates without the buttons: whoever may only view would get 403 from them."""
    return _certificates_fragment(obj, may_change=False)


def _changing(model_admin, request, object_id):
    return object_or_404(model_admin, request, object_id, may=model_admin.has_change_permission)


def _actor(request):
    return request.user.get_username()


@require_POST
def generate(request, object_id, *, model_admin):
    obj = _changing(model_admin, request, object_id)
    try:
        added = flows.generate(obj, actor=_actor(request))
    except flows.CertificateFlowError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, _added_message(added))
    return back_to(obj)


def _added_message(added):
    text = (
        f"Certificate {added.thumbprint_sha1} added as the {added.get_role_display().lower()} "
        "one. Download it and upload it in Entra (App registrations > Certificates & secrets > "
        "Certificates > Upload certificate)"
    )
    if added.role == Certificate.Role.NEXT:
        return text + ", then click “Switch to next certificate”."
    return text + ", then choose Credential: Certificate and save."


@sensitive_variables("form")
def upload(request, object_id, *, model_admin):
    obj = _changing(model_admin, request, object_id)
    form = CertificateUploadForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            added = flows.add_uploaded(obj, form.cleaned_data["pair"], actor=_actor(request))
        except flows.CertificateFlowError as err:
            form.add_error(None, err.message)
        else:
            messages.success(request, _added_message(added))
            return back_to(obj)
    return object_page(
        request,
        model_admin,
        obj,
        "certificate_upload.html",
        title=f"Upload a certificate for {obj}",
        form=form,
        min_bits=keypairs.MIN_KEY_BITS,
    )


def certificate_needed(request, obj):
    """After a save that chose the certificate before there is one: no sign-in, no token
    request; the change page, with where to get a certificate."""
    opts = obj._meta
    upload_url = reverse(
        f"admin:{opts.app_label}_{opts.model_name}_certificate_upload", args=[obj.pk]
    )
    messages.success(request, f"“{obj}” was saved.")
    messages.warning(
        request,
        format_html(
            "“{}” signs with a certificate and has none yet, so no sign-in was started. "
            "First <strong>Generate certificate</strong> (under Certificates below) or "
            '<a href="{}">Upload certificate</a>, upload it to the app registration in Entra '
            "(Certificates &amp; secrets &gt; Certificates), then sign in.",
            obj,
            upload_url,
        ),
    )
    return back_to(obj)


@require_POST
def switch(request, object_id, *, model_admin):
    obj = _changing(model_admin, request, object_id)
    try:
        current = flows.switch_to_next(obj, actor=_actor(request))
    except flows.CertificateFlowError as err:
        messages.error(request, err.message)
    else:
        messages.success(
            request,
            f"Entra accepted certificate {current.thumbprint_sha1}: it is now the current one. "
            "The old one stays until you delete it (here and in Entra).",
        )
    return back_to(obj)


@require_POST
def delete(request, object_id, certificate_id, *, model_admin):
    obj = _changing(model_admin, request, object_id)
    try:
        flows.delete(obj, certificate_id, actor=_actor(request))
    except flows.CertificateFlowError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, "Certificate deleted. Delete it in Entra too.")
    return back_to(obj)


def download(request, object_id, certificate_id, file_format, *, model_admin):
    """The public certificate only, as .cer (DER) or .pem: what Entra's upload takes."""
    obj = object_or_404(model_admin, request, object_id, may=model_admin.has_view_permission)
    certificate = obj.certificates.filter(pk=certificate_id).first()
    if certificate is None or file_format not in DOWNLOADS:
        return HttpResponse("No such certificate download.", status=404, content_type="text/plain")
    content_type, extension = DOWNLOADS[file_format]
    if file_format == "cer":
        body = keypairs.der(certificate.certificate_pem)
    else:
        body = certificate.certificate_pem.encode()
    response = HttpResponse(body, content_type=content_type)
    filename = f"{slugify(obj.name) or 'bcconnect'}-{certificate.thumbprint_sha1[:8]}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
