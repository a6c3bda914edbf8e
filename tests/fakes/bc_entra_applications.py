"""The fake Business Central's "Microsoft Entra Applications" page, for the demo.

In Business Central, someone of the customer's organisation registers a service-to-service
app on a Microsoft Entra Applications card (client ID, State Enabled, permission sets); until
then BC refuses the app's tokens (FakeBusinessCentral.entra_applications). Nothing outside BC
can do it, so the demo needs this page to play that person: a list of cards and a form.
"""

import html
import uuid

from .http import Response, html_response

PATH = "/businesscentral/entra-applications"


class EntraApplicationsPage:
    def __init__(self):
        self.fake = None

    def bind(self, fake):
        """The fake Microsoft, whose BC part (`fake.bc`) holds the cards."""
        self.fake = fake

    def handle(self, request):
        if request.path.rstrip("/") != PATH:
            return None
        if request.method == "POST":
            return self.add_card(request)
        return self.page()

    def page(self, error=""):
        cards = "".join(
            f"<tr><td>{html.escape(tid)}</td><td>{html.escape(client_id)}</td><td>Enabled</td></tr>"
            for tid, client_id in sorted(self.fake.bc.entra_applications)
        )
        problem = f'<p id="error">{html.escape(error)}</p>' if error else ""
        return html_response(
            "<!DOCTYPE html><html><head><title>Microsoft Entra Applications</title></head><body>"
            "<h1>Fake Business Central: Microsoft Entra Applications</h1>"
            f"{problem}<table><tr><th>Tenant</th><th>Client ID</th><th>State</th></tr>{cards}"
            f'</table><form method="post" action="{self.fake.url}{PATH}">'
            '<label>Tenant (directory) ID <input id="tenant" name="tenant"></label> '
            '<label>Client ID <input id="client_id" name="client_id"></label> '
            '<button id="add">New card, State Enabled</button></form></body></html>',
            status=400 if error else 200,
        )

    def add_card(self, request):
        form = request.form
        try:
            tid = str(uuid.UUID(form.get("tenant", "").strip()))
            client_id = str(uuid.UUID(form.get("client_id", "").strip()))
        except ValueError:
            return self.page("Enter the tenant and the client ID as GUIDs.")
        with self.fake.bc.lock:
            self.fake.bc.entra_applications.add((tid, client_id))
        return Response(303, b"", {"Location": f"{self.fake.url}{PATH}"})
