"""A body read one item at a time means exactly what `json.loads` of the whole body means.

The reader decodes items as the chunks arrive, so every cut a network read can make (in a
number, a string, an escape, a multi-byte character) must change nothing: the same items,
and the same bodies refused.
"""

import io
import json
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from authentications.webhooks import body as notification_body
from authentications.webhooks.body import MalformedNotification


class Trickle(io.RawIOBase):
    """A file that hands out at most a few bytes per read, as a slow socket may."""

    def __init__(self, data, sizes):
        self.data, self.sizes, self.pos, self.reads = data, sizes or [1], 0, 0

    def read(self, size=-1):
        step = self.sizes[self.reads % len(self.sizes)]
        self.reads += 1
        chunk = self.data[self.pos : self.pos + min(step, size if size >= 0 else step)]
        self.pos += len(chunk)
        return chunk

    def seek(self, pos, whence=0):
        self.pos = pos
        return pos


def reference(body):
    """What the endpoint accepted when it read the whole body with json.loads."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return "malformed"
    items = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return "malformed"
    return items


def streamed(body, sizes):
    try:
        return list(notification_body.items(Trickle(body, sizes)))
    except MalformedNotification:
        return "malformed"


def same(left, right):
    return json.dumps(left) == json.dumps(right)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
items = st.dictionaries(
    st.sampled_from(["subscriptionId", "clientState", "resource", "changeType", "x"]), values
)
bodies = st.one_of(
    st.builds(lambda v: {"value": v}, st.lists(items, max_size=6)),
    st.dictionaries(st.sampled_from(["value", "other", "@odata.context"]), values, max_size=4),
    values,
)


# Examples: 400 by default, HYPOTHESIS_EXAMPLES=5000 for a thorough hunt.
@settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 400)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    payload=bodies,
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32-le"]),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=400)),
    sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=5),
)
@example(
    payload={"value": [{"n": 1.5e10}]},
    indent=None,
    ascii_only=True,
    encoding="utf-8",
    cut=None,
    sizes=[14],
)
def test_a_streamed_body_means_what_json_loads_means(
    payload, indent, ascii_only, encoding, cut, sizes
):
    body = json.dumps(payload, indent=indent, ensure_ascii=ascii_only).encode(encoding)
    if cut is not None:
        body = body[:cut]

    assert same(streamed(body, sizes), reference(body))


@pytest.mark.parametrize(
    "body",
    [
        b'{"value": [{"a": 1}], "value": [{"b": 2}]}',  # json.loads keeps the last.
        b'{"value": "x", "value": [{"b": 2}]}',
        b'{"value": [{"b": 2}], "value": []}',
        b'{"valu\\u0065": [{"b": 2}]}',
        b'{"value": [{"n": 12345678901234567890e-3}]} ',
        b'{"value": [{"s": "\\ud83d\\ude00 \\ud83d"}]}',
        b"",
        b"   ",
        b'{"value": [{}]} x',
        b'{"value": [{}],}',
        b'{"value": [{},]}',
        b'{"value": [NaN]}',
        b'\xef\xbb\xbf{"value": [{"a": "\xc3\xa9"}]}',
        b'{"value": [{"a": "\xed\xa0\x80"}]}',  # An encoded lone surrogate: surrogatepass.
        b'{"value": [{"a": "\xff"}]}',
        b'{"value": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
    ],
)
@pytest.mark.parametrize("step", [1, 2, 3, 7, 64 * 1024])
def test_awkward_bodies_cut_anywhere(body, step):
    assert same(streamed(body, [step]), reference(body))


def test_an_item_over_a_mebibyte_is_refused_as_not_one_bc_sends():
    body = json.dumps({"value": [{"resource": "x" * (1024 * 1024 + 10)}]}).encode()

    with pytest.raises(MalformedNotification, match="over 1 MiB"):
        list(notification_body.items(io.BytesIO(body)))


def test_complete_items_of_a_cut_body_are_read_as_far_as_they_go():
    body = json.dumps({"value": [{"subscriptionId": str(n)} for n in range(100)]}).encode()

    found = list(notification_body.complete_items(body[:500]))

    assert [item["subscriptionId"] for item in found] == [str(n) for n in range(len(found))]
    assert 10 < len(found) < 100
