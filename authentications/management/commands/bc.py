"""Call Business Central from the command line with a stored authentication.

    python manage.py bc "BC production" GET companies
    python manage.py bc "BC production" GET "companies(<id>)/customers" \\
        --param '$filter=city eq '"'"'Atlanta'"'"'' --all
    python manage.py bc "BC production" PATCH "companies(<id>)/customers(<id>)" \\
        --etag 'W/"..."' --data '{"displayName": "New name"}'
    python manage.py bc "BC production" GET "ODataV4/Company('CRONUS USA, Inc.')/Customer_Card" \\
        --environment-root
    python manage.py bc --endpoint Customers --all --format csv --param '$top=100'
    python manage.py bc --endpoint "New customer" --yes

The bearer token goes only under the environment root (.../v2.0/<tenant>/<environment>/):
a PATH or absolute URL elsewhere, or one that climbs with `..`, is refused in one line.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from authentications.connections.diagnostics import describe_error
from authentications.connections.models import Authentication
from authentications.connections.tokens import TokenError, bc_client
from authentications.endpoints import exports
from authentications.endpoints.models import Endpoint
from bcconnect.client import BusinessCentralError
from bcconnect.errors import BcconnectError

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
FORMATS = {
    "json": exports.json_chunks,
    "jsonl": exports.jsonl_chunks,
    "csv": exports.csv_chunks,
}


class Command(BaseCommand):
    help = "Call a Business Central API path with a stored authentication; prints JSON."

    def add_arguments(self, parser):
        parser.add_argument("authentication", nargs="?", help="The authentication's name.")
        parser.add_argument("method", nargs="?", type=str.upper, choices=METHODS, metavar="METHOD")
        parser.add_argument(
            "path",
            nargs="?",
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
        parser.add_argument(
            "--endpoint",
            metavar="NAME",
            help="Call a stored endpoint instead (no AUTHENTICATION METHOD PATH); --param "
            "overrides its stored query parameters.",
        )
        parser.add_argument(
            "--yes",
            action="store_true",
            help="With --endpoint: send it even though it changes data (POST, PATCH, DELETE). "
            "A stored endpoint's method is not on the command line, so a write is never sent "
            "without this.",
        )
        parser.add_argument(
            "--format",
            choices=sorted(FORMATS),
            help="With --endpoint: the rows as one JSON array, JSON Lines or CSV (default: "
            "BC's answer as JSON; with --all, JSON Lines).",
        )

    def handle(self, *args, **options):
        if options["endpoint"] is not None:
            return self.handle_endpoint(options)
        if options["format"]:
            raise CommandError("--format works with --endpoint.")
        missing = [name for name in ("authentication", "method", "path") if not options[name]]
        if missing:
            raise CommandError(
                f"Give AUTHENTICATION METHOD PATH, or --endpoint NAME ({missing[0]} is missing)."
            )
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
                return self._print_all(client.pages(options["path"], params, prefetch=True))
            headers = {"If-Match": options["etag"]} if options["etag"] else None
            result = client.call(
                options["method"], options["path"], params=params, json=body, headers=headers
            )
        except (TokenError, BusinessCentralError) as err:
            raise CommandError(one_line(err)) from None
        self._print_answer(result.body, options)
        self._note(result.replaced)

    def _print_all(self, pages):
        """Every row as JSON Lines; a failure after some rows is an incomplete export."""
        tally = exports.Tally()
        try:
            for page in pages:
                tally.replaced += page.replaced
                for entity in page.rows:
                    self.stdout.write(json.dumps(entity, ensure_ascii=False))
                    tally.rows += 1
        except BcconnectError as err:
            self._note(tally.replaced)
            prefix = f"{exports.INCOMPLETE} after {tally.rows} rows: " if tally.rows else ""
            raise CommandError(prefix + one_line(err)) from None
        self._note(tally.replaced)

    def _note(self, replaced):
        """Say on stderr that characters were replaced; stdout keeps only the data."""
        if replaced:
            self.stderr.write(exports.replaced_note(replaced))

    def handle_endpoint(self, options):
        """Run the stored endpoint; rows stream to stdout a page at a time."""
        given = [options[name] for name in ("authentication", "method", "path") if options[name]]
        if given or options["data"] or options["etag"] or options["environment_root"]:
            raise CommandError(
                "--endpoint takes no AUTHENTICATION METHOD PATH, --data, --etag or "
                "--environment-root: the endpoint holds them."
            )
        endpoint = self._endpoint(options["endpoint"])
        overrides = dict(self._params(options["param"]))
        if options["all"] and not endpoint.is_read:
            raise CommandError(f"--all only works with GET; {endpoint} is a {endpoint.method}.")
        if not endpoint.is_read and not options["yes"]:
            raise CommandError(
                f"{endpoint} sends a {endpoint.method}: it changes data in Business Central. "
                "Add --yes to send it; nothing was sent."
            )
        failures, tally = [], exports.Tally()
        try:
            if options["all"]:
                pages = exports.open_pages(endpoint, **overrides)
                chunks = FORMATS[options["format"] or "jsonl"](
                    _stop_at(pages, failures), tally=tally, notes=False
                )
            else:
                result = endpoint.call(**overrides)
                tally.replaced = result.replaced
                if not options["format"]:
                    self._print_answer(result.body, options)
                    return self._note(tally.replaced)
                chunks = FORMATS[options["format"]]([_AnswerPage(result.body)], notes=False)
        except BcconnectError as err:
            raise CommandError(one_line(err)) from None
        for chunk in chunks:
            self.stdout.write(chunk, ending="")
        self._note(tally.replaced)
        if failures:
            raise CommandError(f"{exports.INCOMPLETE}: {one_line(failures[0])}")

    def _print_answer(self, answer, options):
        if answer is not None:
            indent = None if options["json"] else 2
            self.stdout.write(json.dumps(answer, indent=indent, ensure_ascii=False))

    @staticmethod
    def _endpoint(name):
        try:
            return Endpoint.objects.select_related("authentication").get(name=name)
        except Endpoint.DoesNotExist:
            raise CommandError(f"No endpoint named {name!r}.") from None

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


def one_line(err):
    return " ".join(describe_error(err, with_http=True).split())


def _stop_at(pages, failures):
    """The pages until BC fails; the failure is kept, so the command can exit non-zero."""
    try:
        yield from pages
    except BcconnectError as err:
        failures.append(err)


class _AnswerPage:
    """One answer seen as a page, for the row formats."""

    def __init__(self, body):
        self.rows = exports.answer_rows(body)
