"""Uploading a certificate: a PEM key with its certificate, or a .pfx with its password.

The password is used once, to open the .pfx, and is kept nowhere; the upload view hides it
(and the files) from error reports.
"""

from django import forms

from authentications.certificates import keypairs


class CertificateUploadForm(forms.Form):
    private_key = forms.FileField(
        label="Private key (PEM)",
        required=False,
        allow_empty_file=True,  # Said once, in clean(), by name.
        help_text="-----BEGIN PRIVATE KEY-----, unencrypted. May also hold the certificate.",
    )
    certificate = forms.FileField(
        label="Certificate (PEM)",
        required=False,
        allow_empty_file=True,  # Said once, in clean(), by name.
        help_text="-----BEGIN CERTIFICATE-----. Leave empty when the key file holds it.",
    )
    pfx = forms.FileField(
        label="Or a PKCS#12 file (.pfx, .p12)",
        required=False,
        allow_empty_file=True,  # Said once, in clean(), by name.
        help_text="The private key and its certificate in one file.",
    )
    password = forms.CharField(
        label="Its password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Used once to open the .pfx file; never stored.",
    )

    def clean(self):
        cleaned = super().clean()
        pfx, key = cleaned.get("pfx"), cleaned.get("private_key")
        if bool(pfx) == bool(key):
            raise forms.ValidationError(
                "Upload either a PEM private key (with its certificate) or a .pfx file.",
                code="one_kind",
            )
        try:
            if pfx:
                pair = keypairs.from_pkcs12(_read(pfx), cleaned.get("password", ""))
            else:
                pair = keypairs.from_pem(_read(key), _read(cleaned.get("certificate")))
        except keypairs.CertificateError as err:
            raise forms.ValidationError(str(err), code="unusable") from err
        cleaned["pair"] = pair
        return cleaned


def _read(upload):
    if upload is None:
        return b""
    if not upload.size:
        raise forms.ValidationError(
            f"“{upload.name}” is empty: choose the file again.", code="empty"
        )
    if upload.size > keypairs.MAX_UPLOAD_BYTES:
        raise forms.ValidationError(
            f"“{upload.name}” is too large for a key or certificate.", code="too_large"
        )
    return upload.read()
