"""`/metrics`: refused without its token, and numbers that answer an operator's questions."""

from datetime import timedelta

import pytest
import requests
import responses
from django.utils import timezone

from authentications.certificates.models import Certificate
from authentications.connections.models import Authentication
from authentications.connections.tokens import TokenError, bc_client, get_access_token
from authentications.kit import signals
from authentications.webhooks.models import ChangeNotification
from bcconnect.client import BusinessCentralClient, BusinessCentralError, Exchange, RetryPolicy
from tests.webhooks.helpers import forget_queued_tasks, make_subscription, on_rq

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"


# --- who may scrape ------------------------------------------------------------------------


def test_metrics_is_404_while_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics", headers={"Authorization": "Bearer "})

    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer é"],
)
def test_metrics_is_401_without_the_right_bearer_token(client, metrics_token, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"bcconnect_" not in response.content


def test_metrics_answers_its_bearer_in_prometheus_format(client, metrics_token):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert "# HELP bcconnect_authentications Authentications by status." in response.text
    assert "no-cache" in response.headers["Cache-Control"]


def test_the_allow_list_refuses_other_addresses_even_with_the_token(
    client, metrics_token, settings
):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.7"]
    headers = {"Authorization": f"Bearer {metrics_token}"}

    assert client.get("/metrics", headers=headers).status_code == 404
    assert client.get("/metrics", headers=headers, REMOTE_ADDR="10.0.0.7").status_code == 200


def test_the_token_is_compared_in_constant_time(client, metrics_token, monkeypatch):
    compared = []
    import hmac

    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))

    client.get("/metrics", headers={"Authorization": "Bearer guess"})

    assert compared == [1]


# --- state read at scrape time -------------------------------------------------------------


def test_authentications_by_status_with_every_status_present(scrape, make_authentication):
    make_authentication(status=Authentication.Status.CONNECTED)
    make_authentication(status=Authentication.Status.NEEDS_SIGN_IN)
    make_authentication(status=Authentication.Status.NEEDS_SIGN_IN)

    found = scrape()

    assert found[("bcconnect_authentications", (("status", "needs_sign_in"),))] == 2
    assert found[("bcconnect_authentications", (("status", "connected"),))] == 1
    assert found[("bcconnect_authentications", (("status", "secret_invalid"),))] == 0


def test_earliest_token_expiry_and_expired_tokens(scrape, make_authentication):
    now = timezone.now()
    connected = Authentication.Status.CONNECTED
    make_authentication(status=connected, access_token_expires_at=now + timedelta(minutes=10))
    make_authentication(status=connected, access_token_expires_at=now + timedelta(hours=1))
    make_authentication(status=connected, access_token_expires_at=now - timedelta(minutes=1))
    make_authentication(
        status=Authentication.Status.NEEDS_SIGN_IN, access_token_expires_at=now - timedelta(1)
    )

    found = scrape()

    assert found[("bcconnect_access_token_earliest_expiry_seconds", ())] == pytest.approx(
        600, abs=30
    )
    assert found[("bcconnect_access_tokens_expired", ())] == 1


def test_client_secret_and_certificate_days_left(scrape, make_authentication):
    today = timezone.localdate()
    make_authentication(client_secret_expires_on=today + timedelta(days=12))
    make_authentication(client_secret_expires_on=today + timedelta(days=200))
    with_certificate = make_authentication(credential_type=Authentication.Credential.CERTIFICATE)
    Certificate.objects.create(
        authentication=with_certificate,
        role=Certificate.Role.CURRENT,
        source=Certificate.Source.GENERATED,
        private_key="-",
        certificate_pem="-",
        subject="CN=bcconnect",
        thumbprint_sha1="0" * 40,
        thumbprint_sha256="0" * 64,
        not_before=timezone.now(),
        not_after=timezone.now() + timedelta(days=9, hours=12),
    )

    found = scrape()

    assert found[("bcconnect_client_secret_days_left", ())] == 12
    assert found[("bcconnect_certificate_days_left", ())] == pytest.approx(9.5, abs=0.01)


def test_no_sample_when_there_is_nothing_to_measure(scrape):
    found = scrape()

    assert ("bcconnect_client_secret_days_left", ()) not in found
    assert ("bcconnect_certificate_days_left", ()) not in found
    assert ("bcconnect_access_token_earliest_expiry_seconds", ()) not in found
    assert found[("bcconnect_notification_oldest_undelivered_seconds", ())] == 0


def notification(subscription, status, *, age):
    count = ChangeNotification.objects.count()
    return ChangeNotification.objects.create(
        subscription=subscription,
        key=f"key-{count}",
        record_key=f"customers({count})",
        entity="customers",
        change_type="updated",
        resource="api/v2.0/companies(1)/customers",
        status=status,
        received_at=timezone.now() - age,
    )


def test_inbox_depth_oldest_undelivered_parked_and_no_handler(scrape, make_authentication):
    subscription = make_subscription(make_authentication())
    Status = ChangeNotification.Status
    notification(subscription, Status.PENDING, age=timedelta(minutes=12))
    notification(subscription, Status.RETRYING, age=timedelta(minutes=3))
    notification(subscription, Status.DELIVERED, age=timedelta(hours=5))
    notification(subscription, Status.PARKED, age=timedelta(hours=5))
    notification(subscription, Status.NO_HANDLER, age=timedelta(hours=5))
    notification(subscription, Status.NO_HANDLER, age=timedelta(hours=5))

    found = scrape()

    assert found[("bcconnect_notification_inbox_depth", ())] == 2
    assert found[("bcconnect_notification_oldest_undelivered_seconds", ())] == pytest.approx(
        720, abs=30
    )
    assert found[("bcconnect_notifications_parked", ())] == 1
    assert found[("bcconnect_notifications_no_handler", ())] == 2


def test_subscriptions_by_status_and_expiring_within_a_day(scrape, make_authentication):
    authentication = make_authentication()
    soon = timezone.now() + timedelta(hours=5)
    make_subscription(authentication, expires_at=soon)
    make_subscription(authentication, company_id="c2", expires_at=timezone.now() + timedelta(2))
    make_subscription(authentication, company_id="c3", status="failing", expires_at=soon)

    found = scrape()

    assert found[("bcconnect_subscriptions_expiring_24h", ())] == 1
    assert found[("bcconnect_subscriptions", (("status", "failing"),))] == 1
    assert found[("bcconnect_subscriptions", (("status", "active"),))] == 2


def test_task_queue_depth_of_the_database_engine(scrape, make_authentication):
    from authentications.webhooks.tasks import queue_delivery

    queue_delivery(["customers(1)"])
    queue_delivery(["customers(2)"])

    found = scrape()

    assert found[("bcconnect_task_queue_depth", (("engine", "database"),))] == 2


@pytest.mark.task_engines
@pytest.mark.django_db(transaction=True)  # RQ hears of a task once its rows commit.
def test_task_queue_depth_of_this_runs_engine_counts_retries_queued_for_later(scrape):
    from authentications.webhooks.tasks import queue_delivery

    forget_queued_tasks()
    queue_delivery(["customers(1)"])
    queue_delivery(["customers(2)"], run_after=timezone.now() + timedelta(minutes=5))

    found = scrape()

    engine = "rq" if on_rq() else "database"
    assert found[("bcconnect_task_queue_depth", (("engine", engine),))] == 2
    forget_queued_tasks()


# --- counted where it happens --------------------------------------------------------------


def test_a_refresh_is_counted_with_its_entra_request(tokens_planted, counted):
    refreshed = counted("bcconnect_token_refreshes_total", outcome="refreshed")
    entra_ok = counted("bcconnect_outside_requests_total", system="entra", answer="2xx")
    timed = counted("bcconnect_outside_request_duration_seconds_count", system="entra")

    get_access_token(tokens_planted, force_refresh=True)

    assert counted("bcconnect_token_refreshes_total", outcome="refreshed") == refreshed + 1
    assert counted("bcconnect_outside_requests_total", system="entra", answer="2xx") > entra_ok
    assert counted("bcconnect_outside_request_duration_seconds_count", system="entra") > timed


def test_an_entra_outage_counts_a_transient_refresh_and_a_5xx(
    tokens_planted, fake_microsoft, counted
):
    transient = counted("bcconnect_token_refreshes_total", outcome="transient")
    errors = counted("bcconnect_outside_requests_total", system="entra", answer="5xx")
    fake_microsoft.entra.fail_next_token_request(("status", 503))

    get_access_token(tokens_planted, force_refresh=True)  # The stored token is still good.

    assert counted("bcconnect_token_refreshes_total", outcome="transient") == transient + 1
    assert counted("bcconnect_outside_requests_total", system="entra", answer="5xx") == errors + 1


def test_a_revoked_user_counts_a_refresh_that_needs_sign_in(
    tokens_planted, fake_microsoft, counted
):
    before = counted("bcconnect_token_refreshes_total", outcome="needs_sign_in")
    fake_microsoft.entra.revoke_user("jane@contoso.com")

    with pytest.raises(TokenError):
        get_access_token(tokens_planted, force_refresh=True)

    assert counted("bcconnect_token_refreshes_total", outcome="needs_sign_in") == before + 1


def test_bc_requests_are_counted_by_answer_including_429(tokens_planted, fake_microsoft, counted):
    ok = counted("bcconnect_outside_requests_total", system="bc", answer="2xx")
    throttled = counted("bcconnect_outside_requests_total", system="bc", answer="429")
    fake_microsoft.bc.fail_next(("status", 429, {"Retry-After": "0"}))

    bc_client(tokens_planted).companies()

    assert counted("bcconnect_outside_requests_total", system="bc", answer="429") == throttled + 1
    assert counted("bcconnect_outside_requests_total", system="bc", answer="2xx") == ok + 1


@responses.activate
def test_the_bc_client_tells_its_hook_of_timeouts_and_5xx_without_the_url():
    url = "https://api.businesscentral.dynamics.com/v2.0/t/Production/api/v2.0"
    responses.get(f"{url}/companies", body=requests.ConnectTimeout())
    responses.get(f"{url}/companies", status=500, json={"error": {"code": "x", "message": "y"}})
    heard = []
    client = BusinessCentralClient(
        url,
        lambda force_refresh=False: "token",
        retry=RetryPolicy(retry_budget=0),
        on_exchange=heard.append,
    )

    with pytest.raises(BusinessCentralError):
        client.get("companies")
    with pytest.raises(BusinessCentralError):
        client.get("companies")

    assert [(e.method, e.status, e.timed_out) for e in heard] == [
        ("GET", None, True),
        ("GET", 500, False),
    ]
    assert all(isinstance(e, Exchange) and e.seconds >= 0 for e in heard)


def test_api_calls_are_counted_by_scope_and_status(counted):
    before = counted("bcconnect_api_requests_total", scope="endpoints.run", status="200")

    signals.api_call.send(sender=None, scope="endpoints.run", status=200)

    assert counted("bcconnect_api_requests_total", scope="endpoints.run", status="200") == (
        before + 1
    )


@pytest.mark.parametrize("scope", ["<script>", "a" * 41, "", "Endpoints Run"])
def test_a_scope_that_is_no_name_from_code_is_counted_as_other(counted, scope):
    before = counted("bcconnect_api_requests_total", scope="other", status="403")

    signals.api_call.send(sender=None, scope=scope, status=403)

    assert counted("bcconnect_api_requests_total", scope="other", status="403") == before + 1


def test_every_answer_of_the_site_is_counted_by_status_class(client, counted):
    not_found = counted("bcconnect_http_responses_total", status="4xx")
    timed = counted("bcconnect_http_request_duration_seconds_count")

    client.get("/no-such-page-" + "x" * 30)

    assert counted("bcconnect_http_responses_total", status="4xx") == not_found + 1
    assert counted("bcconnect_http_request_duration_seconds_count") == timed + 1


def test_no_label_value_comes_from_a_request(client, scrape):
    client.get("/authentications/authorize/<script>alert(1)</script>/")
    client.get("/admin/?q=%3Cscript%3E", HTTP_USER_AGENT="<script>")

    found = scrape()

    labels = {value for _, pairs in found for _, value in pairs}
    assert not any("<" in value or "script" in value for value in labels)
