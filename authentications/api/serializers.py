"""What the API shows and accepts: never a secret (no client secret, no refresh token)."""

from rest_framework import serializers

from authentications.connections.models import Authentication

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
