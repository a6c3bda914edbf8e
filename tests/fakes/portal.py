"""The fake Entra admin center's one page that matters here: Certificates & secrets.

    {fake}/portal/certificates

lists the certificates uploaded to the fake app registration (SHA-1 thumbprints, as Entra
shows them) and takes a new one, pasted as PEM, like Entra's *Upload certificate*. The
demo and the browser test use it; the fake's token endpoint then accepts assertions signed
with that certificate's key.
"""

import base64
import html

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .entra import CLIENT_ID
from .http import html_response

PATH = "/portal/certificates"


class CertificatePortal:
    def __init__(self, entra, client_id=CLIENT_ID):
        self.entra = entra
        self.client_id = client_id

    def handle(self, request):
        if request.path != PATH:
            return None
        if request.method == "POST":
            return self.upload(request.form.get("certificate", ""))
        return self.page()

    def upload(self, pasted):
        try:
            certificate = _read(pasted)
        except ValueError:
            return self.page("That is not a certificate (.cer or .pem).", status=400)
        app = self.entra.apps.get(self.client_id)
        if app is None:
            return self.page("The app registration does not exist.", status=404)
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        with self.entra.lock:
            if pem not in app.certificates:
                app.certificates.append(pem)
        return self.page(f"Certificate {_thumbprint(certificate)} uploaded.")

    def page(self, message="", status=200):
        app = self.entra.apps.get(self.client_id)
        rows = "".join(
            f"<li class='thumbprint'>{_thumbprint(x509.load_pem_x509_certificate(pem.encode()))}"
            "</li>"
            for pem in (app.certificates if app else [])
        )
        note = f"<p id='message'>{html.escape(message)}</p>" if message else ""
        return html_response(
            "<!DOCTYPE html><html><head><title>Certificates &amp; secrets</title></head><body>"
            f"<h1>Fake Entra: Certificates &amp; secrets of {html.escape(self.client_id)}</h1>"
            f"{note}<h2>Certificates</h2><ul id='certificates'>{rows}</ul>"
            f'<form method="post" action="{PATH}">'
            "<label>Upload certificate (paste the .pem)<br>"
            '<textarea id="certificate" name="certificate" rows="12" cols="70"></textarea></label>'
            '<br><button id="upload" type="submit">Add</button></form></body></html>',
            status=status,
        )


def _read(pasted):
    text = pasted.strip()
    if "BEGIN CERTIFICATE" in text:
        return x509.load_pem_x509_certificate(text.encode())
    return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))


def _thumbprint(certificate):
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # As Entra lists it.
