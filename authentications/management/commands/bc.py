"""Call Business Central from the command line with a stored authentication.

    python manage.py bc "BC production" GET companies
    python manage.py bc "BC production" GET "companies(<id>)/customers" \\
        --param '$filter=city eq '"'"'Atlanta'"'"'' --all
    python manage.py bc "BC production" PATCH "companies(<id>)/customers(<id>)" \\
        --etag 'W/"..."' --data '{"displayName": "New name"}'
    python manage.py bc "BC production" GET "ODataV4/Company('CRONUS USA, Inc.')/Customer_Card" \\
        --environment-root

The bearer token goes only under the environment root (.../v2.0/<tenant>/<environment>/):
a PATH or absolute URL elsewhere, or one that climbs with `..`, is refused in one line.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from authentications.diagnostics import describe_error
from authentications.models import Authentication
from authentications.tokens import TokenError, bc_client
from bcconnect.client import BusinessCentralError

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


class Command(BaseCommand):
    help = "Call a Business Central API path with a stored authentication; prints JSON."

    def add_arguments(self, parser):
        parser.add_argument("authentication", help="The authentication's name.")
        parser.add_argument("method", type=str.upper, choices=METHODS, metavar="METHOD")
        parser.add_argument(
            "path",
            help="Relative to the BC URL, e.g. companies; or an absolute URL under the "
            "environment root.",
        )
        parser.add_argument(
            "--environment-root",
            action="store_true",
            help="PATH is relative to the environment root (.../v2.0/<tenant>/<environment>/), "
            "e.g. ODataV4/... or api/microsoft/automation/v2.0/...",
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="K=V",
            help="Query option, e.g. '$filter=number eq '\\''C001'\\'''. Repeatable.",
        )
        parser.add_argument("--data", help="JSON body, or @file to read it from a file.")
        parser.add_argument("--etag", help="If-Match for PATCH/PUT/DELETE ('*' to overwrite).")
        parser.add_argument("--all", action="store_true", help="GET every page; print JSON Lines.")
        parser.add_argument("--json", action="store_true", help="Compact JSON on one line.")

    def handle(self, *args, **options):
        authentication = self._authentication(options["authentication"])
        params = self._params(options["param"])
        body = self._body(options["data"])
        if options["all"] and options["method"] != "GET":
            raise CommandError("--all only works with GET.")
        try:
            client = bc_client(authentication)
            if options["environment_root"]:
                client = client.environment_client()
            if options["all"]:
                for entity in client.iter(options["path"], params):
                    self.stdout.write(json.dumps(entity, ensure_ascii=False))
                return
            headers = {"If-Match": options["etag"]} if options["etag"] else None
            answer = client.request(
                options["method"], options["path"], params=params, json=body, headers=headers
            )
        except (TokenError, BusinessCentralError) as err:
            raise CommandError(" ".join(describe_error(err, with_http=True).split())) from None
        if answer is not None:
            indent = None if options["json"] else 2
            self.stdout.write(json.dumps(answer, indent=indent, ensure_ascii=False))

    @staticmethod
    def _authentication(name):
        try:
            return Authentication.objects.get(name=name)
        except Authentication.DoesNotExist:
            raise CommandError(f"No authentication named {name!r}.") from None

    @staticmethod
    def _params(pairs):
        params = []
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise CommandError(f"--param {pair!r}: expected key=value.")
            params.append((key, value))
        return params

    @staticmethod
    def _body(data):
        if data is None:
            return None
        if data.startswith("@"):
            try:
                data = Path(data[1:]).read_text()
            except OSError as err:
                raise CommandError(f"--data {data}: {err.strerror}.") from None
        try:
            return json.loads(data)
        except ValueError as err:
            raise CommandError(f"--data is not valid JSON: {err}.") from None
