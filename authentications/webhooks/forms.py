"""The admin form that adds a webhook subscription: company and entity checked with BC."""

import re

from django import forms

from authentications.connections.tokens import bc_client
from authentications.webhooks import subscriptions
from authentications.webhooks.models import Subscription
from bcconnect.errors import BcconnectError

ENTITY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
API_PATH = re.compile(r"api/v2\.0|api/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/v[0-9][A-Za-z0-9_.]*")


class SubscriptionForm(forms.ModelForm):
    company = forms.CharField(
        max_length=250, help_text="The company's name, display name or ID, as BC knows it."
    )

    class Meta:
        model = Subscription
        fields = ["authentication", "company", "api_path", "entity"]

    def clean_entity(self):
        entity = self.cleaned_data["entity"].strip()
        if not ENTITY.fullmatch(entity):
            raise forms.ValidationError("An entity set name, e.g. customers or salesOrders.")
        return entity

    def clean_api_path(self):
        api_path = self.cleaned_data["api_path"].strip().strip("/")
        if not API_PATH.fullmatch(api_path):
            raise forms.ValidationError("api/v2.0, or api/<publisher>/<group>/<version>.")
        return api_path

    def clean(self):
        cleaned = super().clean()
        authentication = cleaned.get("authentication")
        if self.errors or authentication is None:
            return cleaned
        try:
            company = _find_company(authentication, cleaned["company"])
            self.instance.company_id = company["id"]
            self.instance.company_name = company.get("name", "")
            _check_supported(authentication, company["id"], cleaned)
        except BcconnectError as err:
            raise forms.ValidationError(f"Business Central: {err.message}") from err
        return cleaned


def _find_company(authentication, wanted):
    wanted = wanted.strip()
    for company in bc_client(authentication).companies():
        names = {company.get("id", ""), company.get("name", ""), company.get("displayName", "")}
        if wanted.lower() in {name.lower() for name in names if name}:
            return company
    raise forms.ValidationError(f"Business Central has no company “{wanted}”.")


def _check_supported(authentication, company_id, cleaned):
    """The entity must be one BC sends notifications for (when BC lists them)."""
    wanted = f"{cleaned['api_path'].removeprefix('api/')}/{cleaned['entity']}"
    supported = subscriptions.supported_resources(authentication, company_id)
    if supported and wanted not in {row.strip("/") for row in supported}:
        raise forms.ValidationError(
            f"Business Central sends no notifications for “{wanted}”. "
            f"Supported: {', '.join(row.strip('/') for row in supported)}."
        )
