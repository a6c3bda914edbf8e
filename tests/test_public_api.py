"""The public Python API has one home, `authentications.sdk`; the four old import paths keep
working for one release, each with a DeprecationWarning that names the new home (issue 20)."""

import importlib

import pytest
from django.apps import apps

from authentications import sdk
from authentications.connections import models as connection_models
from authentications.connections import tokens
from authentications.endpoints import models as endpoint_models
from authentications.webhooks import handlers

DOCUMENTED = {
    "Authentication": connection_models.Authentication,
    "Change": handlers.Change,
    "Endpoint": endpoint_models.Endpoint,
    "EndpointNotReady": endpoint_models.EndpointNotReady,
    "TokenError": tokens.TokenError,
    "bc_client": tokens.bc_client,
    "change_notifications": handlers,
    "get_access_token": tokens.get_access_token,
}

OLD_PATHS = [
    ("authentications.tokens", "get_access_token", tokens.get_access_token),
    ("authentications.tokens", "bc_client", tokens.bc_client),
    ("authentications.tokens", "TokenError", tokens.TokenError),
    ("authentications.models", "Authentication", connection_models.Authentication),
    ("authentications.endpoints", "Endpoint", endpoint_models.Endpoint),
    ("authentications.endpoints", "EndpointNotReady", endpoint_models.EndpointNotReady),
    ("authentications.change_notifications", "on", handlers.on),
    ("authentications.change_notifications", "Change", handlers.Change),
]


def test_every_documented_name_imports_from_the_sdk():
    assert sorted(sdk.__all__) == sorted(DOCUMENTED)
    for name, value in DOCUMENTED.items():
        assert getattr(sdk, name) is value


@pytest.mark.parametrize(("module", "name", "value"), OLD_PATHS)
def test_an_old_import_path_still_works_and_warns(module, name, value):
    old = importlib.import_module(module)

    with pytest.warns(DeprecationWarning, match=rf"{module}\.{name} is deprecated") as warned:
        assert getattr(old, name) is value

    assert "authentications.sdk" in str(warned[0].message)
    assert warned[0].filename == __file__  # stacklevel=2: the warning points at the caller.


@pytest.mark.parametrize(
    "module", ["authentications.tokens", "authentications.models", "authentications.endpoints"]
)
def test_a_shim_serves_no_private_or_unknown_name(module):
    old = importlib.import_module(module)

    with pytest.raises(AttributeError):
        old.no_such_name  # noqa: B018
    with pytest.raises(AttributeError):
        old._private  # noqa: B018


def test_the_models_face_serves_every_model_of_the_app():
    from authentications import models as face

    app_models = {model.__name__ for model in apps.get_app_config("authentications").get_models()}

    assert set(face.HOMES) == app_models
    for name in app_models:
        with pytest.warns(DeprecationWarning):
            assert getattr(face, name) is apps.get_model("authentications", name)


def test_submodules_of_the_endpoints_package_import_without_a_warning(recwarn):
    from authentications.endpoints import exports, models, runs  # noqa: F401

    assert [w for w in recwarn if issubclass(w.category, DeprecationWarning)] == []
