"""Where an authentication's admin page is: for the admin, emails and the callback."""

from django.urls import reverse


def change_url(authentication_id):
    """The path of the admin change page of the authentication with this id."""
    return reverse("admin:authentications_authentication_change", args=[authentication_id])
