"""Which request headers callers may add to a BC request, and why the others are refused.

Endpoint headers are typed by staff, stored, and shown on pages and in exports, so none may
carry a credential (the client adds the bearer token itself, and nothing else is needed),
decide where the request goes (`Host`, `Forwarded`), change its method behind the admin's
write confirmation (`X-HTTP-Method-Override`) or break HTTP framing (`Content-Length`, a
line break). The admin form and the client use this one rule, so what the form accepts is
what the client sends.
"""

import re

_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 `token`
# Substrings of a header name (lower case, without - and _) that suggest a credential:
# Authorization, Proxy-Authorization, Cookie, X-Api-Key, Ocp-Apim-Subscription-Key, ...
CREDENTIAL_WORDS = (
    "auth",
    "token",
    "secret",
    "key",
    "cookie",
    "password",
    "passwd",
    "credential",
    "session",
    "signature",
)
_ROUTING = "it decides which server or path receives the request"
_METHOD = "it changes the request's method (a write would skip the confirmation)"
_FRAMING = "the HTTP library sets it from the request itself"
REFUSED_NAMES = {
    "host": _ROUTING,
    "forwarded": _ROUTING,
    "x-original-url": _ROUTING,
    "x-rewrite-url": _ROUTING,
    "x-original-host": _ROUTING,
    "x-http-method": _METHOD,
    "x-http-method-override": _METHOD,
    "x-method-override": _METHOD,
    "content-length": _FRAMING,
    "transfer-encoding": _FRAMING,
    "connection": _FRAMING,
    "keep-alive": _FRAMING,
    "te": _FRAMING,
    "trailer": _FRAMING,
    "upgrade": _FRAMING,
    "expect": _FRAMING,
}
REFUSED_PREFIXES = {"proxy-": "it is meant for a proxy", "x-forwarded-": _ROUTING}
# A value that is itself a credential, under any header name: an authorization scheme and
# its parameters ("Bearer eyJ…", "Basic dXNlcjpwYXNz"), or a JSON Web Token anywhere in it.
_CREDENTIAL_VALUE = re.compile(
    r"^(bearer|basic|digest|negotiate|ntlm|hawk|sharedkey|sharedaccesssignature|pop)\s+\S"
    r"|eyJ[\w-]{4,}\.[\w-]{4,}\.",
    re.IGNORECASE,
)
MAX_NAME_LENGTH = 100
MAX_VALUE_LENGTH = 4000


def forbidden_header(name: str, value: object = None) -> str | None:
    """Why the header `name` (with `value`, when given) may not be sent; None when it may.

    The reason never repeats the value: a refused value may be the very secret that must
    not be shown.
    """
    return _name_problem(name) or (None if value is None else _value_problem(value))


def could_carry_credential(name: str) -> bool:
    """Whether a header named `name` (in a request or an answer) may hold a credential."""
    squeezed = name.lower().replace("-", "").replace("_", "")
    return any(word in squeezed for word in CREDENTIAL_WORDS)


def shown_header_name(name: object) -> str:
    """`name` quoted for a message, or a description when it is not a plain header name."""
    if isinstance(name, str) and _NAME.fullmatch(name) and len(name) <= MAX_NAME_LENGTH:
        return repr(name)
    return "with an invalid name"


def _name_problem(name):
    if not isinstance(name, str) or not name:
        return "a header needs a name"
    if "\r" in name or "\n" in name:
        return "its name contains a line break"
    if not _NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        return "its name has characters (or a length) HTTP header names cannot have"
    lowered = name.lower()
    if lowered in REFUSED_NAMES:
        return REFUSED_NAMES[lowered]
    for prefix, reason in REFUSED_PREFIXES.items():
        if lowered.startswith(prefix):
            return reason
    if could_carry_credential(name):
        return "it could carry a credential; the client adds the bearer token itself"
    return None


def _value_problem(value):
    if not isinstance(value, str):
        return "its value must be text"
    if "\r" in value or "\n" in value:
        return "its value contains a line break"
    if any((ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F for char in value):
        return "its value contains a control character"
    if value != value.strip():
        return "its value starts or ends with whitespace"
    if len(value) > MAX_VALUE_LENGTH:
        return f"its value is longer than {MAX_VALUE_LENGTH} characters"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "its value has characters an HTTP header cannot carry"
    if looks_like_credential(value):
        return "its value looks like a credential (an authorization scheme or a token)"
    return None


def looks_like_credential(value: str) -> bool:
    """Whether `value` is shaped like a credential, whatever the header or parameter name."""
    return _CREDENTIAL_VALUE.search(value) is not None
