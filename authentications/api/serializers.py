"""What the API shows and accepts: never a secret (no client secret, no refresh token)."""

from rest_framework import serializers

from authentications.connections.models import Authentication
from authentications.endpoints.models import Endpoint

MAX_MIN_VALIDITY = 3000  # Entra's access tokens live 60-90 minutes: ask for less than 50.


class AuthenticationSerializer(serializers.ModelSerializer):
    environment = serializers.CharField(source="environment_name", read_only=True)

    class Meta:
        model = Authentication
        fields = [
            "id",
            "name",
            "kind",
            "status",
            "environment",
            "base_url",
            "access_token_expires_at",
        ]
        read_only_fields = fields


class TokenQuerySerializer(serializers.Serializer):
    min_validity = serializers.IntegerField(
        default=120,
        min_value=0,
        max_value=MAX_MIN_VALIDITY,
        help_text="Seconds the token must stay valid; a shorter-lived one is refreshed first.",
    )


class TokenSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_at = serializers.DateTimeField()
    expires_in = serializers.IntegerField(help_text="Seconds until expires_at.")


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details; `code` is stable, `detail` is for people."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Endpoint
        fields = [
            "id",
            "name",
            "description",
            "method",
            "authentication",
            "path",
            "company_id",
            "company_name",
            "last_tested_at",
            "last_test_status",
        ]
        read_only_fields = fields


class RunSerializer(serializers.Serializer):
    """How a run went: what the admin's Test page shows, as data."""

    ok = serializers.BooleanField()
    sent = serializers.BooleanField(help_text="False when it could not be sent as stored.")
    status = serializers.IntegerField(allow_null=True, help_text="BC's HTTP status.")
    elapsed_ms = serializers.IntegerField(source="ms")
    request_id = serializers.CharField(allow_blank=True)
    rows = serializers.ListField(child=serializers.DictField(), help_text="At most 50.")
    row_count = serializers.IntegerField(help_text="Rows on the first page, or in the answer.")
    more = serializers.BooleanField(help_text="Whether BC has more pages.")
    entity = serializers.BooleanField(help_text="BC answered one entity.")
    error = serializers.CharField(allow_blank=True)
    error_code = serializers.CharField(allow_blank=True)
    warning = serializers.CharField(allow_blank=True)


class ExportQuerySerializer(serializers.Serializer):
    file = serializers.ChoiceField(choices=["csv", "jsonl"], default="csv")
