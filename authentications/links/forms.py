"""The form that sends the Authorization URL: who gets it, and a word from the sender."""

from django import forms
from django.core.validators import validate_email


class EmailLinkForm(forms.Form):
    """Who gets the Authorization URL, and an optional word from the sender."""

    MAX_RECIPIENTS = 10

    recipients = forms.CharField(
        label="Recipients",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Email addresses of the people with a Business Central login who may grant "
        "access, separated by commas or new lines.",
    )
    message = forms.CharField(
        label="Personal message",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}),
        help_text="Optional. Included above the explanation in the email.",
    )

    def clean_recipients(self):
        raw = self.cleaned_data["recipients"].replace(";", ",").replace("\n", ",")
        addresses = [address.strip() for address in raw.split(",") if address.strip()]
        if not addresses:
            raise forms.ValidationError("Enter at least one email address.")
        invalid = []
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                invalid.append(address)
        if invalid:
            raise forms.ValidationError(
                "Not valid email address(es): %(addresses)s.",
                params={"addresses": ", ".join(invalid)},
                code="invalid",
            )
        unique = {}
        for address in addresses:  # One email per person, however they were typed.
            unique.setdefault(address.lower(), address)
        unique = list(unique.values())
        if len(unique) > self.MAX_RECIPIENTS:
            raise forms.ValidationError(
                f"Send to at most {self.MAX_RECIPIENTS} people at once.", code="too_many"
            )
        return unique
