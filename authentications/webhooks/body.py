"""Reading a notification body as large as BC may send, with memory bounded.

A batch can run to megabytes, and BC treats a 4xx as a dead endpoint, so a large body must
be read, not refused. It is copied in chunks into a spooled file (in memory up to
SPOOLED_IN_MEMORY, beyond it on disk in FILE_UPLOAD_TEMP_DIR, as Django spools uploads),
then read twice, one item of its "value" array at a time with
`json.JSONDecoder.raw_decode`: the first pass checks the whole body is what `json.loads`
would accept (so a body that is not JSON stores nothing), the second hands the items on.
Neither the body nor its parsed tree is held whole; the largest thing in memory is one
item (at most MAX_ITEM_CHARS).
"""

import codecs
import io
import json
import tempfile
from collections.abc import Iterator

from django.conf import settings

CHUNK = 64 * 1024
PREFIX = 64 * 1024  # What is read of an oversize body to find the subscriptions it names.
# One item of BC's (subscriptionId, clientState, resource, changeType, two dates) is under
# 3 KB; a larger one is no notification, and a cap keeps one item from filling memory.
MAX_ITEM_CHARS = 1024 * 1024
WHITESPACE = " \t\n\r"  # JSON's whitespace, exactly.
LOOKAHEAD = 32  # A value decoded this close to the end of what is read is decoded again.
SPOOLED_IN_MEMORY = 1024 * 1024  # A body up to this size is never written to disk.

NOT_JSON = "The body is not JSON."
NO_LIST = 'The body has no "value" list of notifications.'
NOT_OBJECTS = "Every notification must be a JSON object."
ITEM_TOO_LARGE = "A notification item is over 1 MiB: not one BC sends."


class MalformedNotification(ValueError):
    """The body is not a BC notification: answered 400."""


class TooLarge(Exception):
    """The body is over BC_NOTIFICATION_MAX_BYTES; `prefix` is its first bytes, for the log."""

    def __init__(self, prefix: bytes):
        super().__init__("The body is over BC_NOTIFICATION_MAX_BYTES.")
        self.prefix = prefix


def spool(request, *, limit: int):
    """The body in a spooled file positioned at its start, or TooLarge past `limit` bytes.

    OSError when it cannot be read (the client went away) or spooled (the disk is full).
    """
    stream, declared = _stream(request)
    if declared > limit:  # Known before reading: read only what the log needs.
        raise TooLarge(stream.read(PREFIX))
    body = tempfile.SpooledTemporaryFile(
        max_size=SPOOLED_IN_MEMORY, dir=settings.FILE_UPLOAD_TEMP_DIR
    )
    size = 0
    while size <= limit and (chunk := stream.read(min(CHUNK, limit + 1 - size))):
        body.write(chunk)
        size += len(chunk)
    body.seek(0)
    if size > limit:
        prefix = body.read(PREFIX)
        body.close()
        raise TooLarge(prefix)
    return body


def _stream(request):
    """What to read the body from, and its declared length (0: none declared).

    Django reads no body without CONTENT_LENGTH; a server that passes a chunked body on
    without one says so with `wsgi.input_terminated` (gunicorn does): read that to its end.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if not declared and request.META.get("wsgi.input_terminated"):
        return request.META["wsgi.input"], 0
    return request, declared


def items(body) -> Iterator[dict]:
    """Check the whole body, then yield the items of its "value" list, one at a time."""
    last = _Pass(body, wanted=None).check()
    body.seek(0)
    yield from _Pass(body, wanted=last).items()


def complete_items(prefix: bytes) -> Iterator[dict]:
    """The whole items at the start of a cut body (an oversize one), as far as they go."""
    try:
        for item in _Pass(io.BytesIO(prefix), wanted=0).items():
            if isinstance(item, dict):
                yield item
    except MalformedNotification:
        return


class _Reader:
    """JSON text decoded from a binary file chunk by chunk, as `json.loads` decodes bytes."""

    decoder = json.JSONDecoder()

    def __init__(self, file):
        self.file, self.text, self.pos, self.eof = file, "", 0, False
        head = b""
        while len(head) < 4 and (chunk := file.read(CHUNK)):  # What detect_encoding needs.
            head += chunk
        self.decode = codecs.getincrementaldecoder(json.detect_encoding(head))("surrogatepass")
        self._take(head)

    def _take(self, data):
        try:
            self.text += self.decode.decode(data, final=not data)
        except UnicodeDecodeError as err:
            raise MalformedNotification(NOT_JSON) from err
        self.eof = not data

    def fill(self, at_least=1):
        """Read until `at_least` more characters are buffered, or the end."""
        if self.pos:
            self.text, self.pos = self.text[self.pos :], 0
        wanted = len(self.text) + at_least
        while not self.eof and len(self.text) < wanted:
            self._take(self.file.read(max(CHUNK, at_least)))

    def peek(self):
        """The next character that is not whitespace ('' at the end)."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text) or self.eof:
                return self.text[self.pos : self.pos + 1]
            self.fill()

    def expect(self, char, message=NOT_JSON):
        if self.peek() != char:
            raise MalformedNotification(message)
        self.pos += 1

    def value(self):
        """The next JSON value, however the chunks cut it."""
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as err:
                if self.eof or not self._maybe_cut(err):
                    raise MalformedNotification(NOT_JSON) from err
                self._more()
                continue
            except RecursionError as err:
                raise MalformedNotification(NOT_JSON) from err
            if len(self.text) - end < LOOKAHEAD and not self.eof:
                self._more()  # A number cut at "1." or "1e" decodes as 1: read on first.
                continue
            if end - self.pos > MAX_ITEM_CHARS:
                raise MalformedNotification(ITEM_TOO_LARGE)
            self.pos = end
            return value

    def _maybe_cut(self, err):
        """Whether the error may be the end of the buffer rather than of valid JSON."""
        return err.msg.startswith("Unterminated string") or err.pos >= len(self.text) - 16

    def _more(self):
        """Double what is buffered of this value, up to MAX_ITEM_CHARS."""
        buffered = len(self.text) - self.pos
        room = MAX_ITEM_CHARS + LOOKAHEAD - buffered
        if room <= 0:
            raise MalformedNotification(ITEM_TOO_LARGE)
        self.fill(at_least=min(max(CHUNK, buffered), room))


class _Pass:
    """One pass over `{"...": ..., "value": [item, ...]}`.

    `json.loads` keeps the last of duplicate keys, so the first pass (`wanted` None) finds
    which "value" member counts and checks it is a non-empty list of objects; the second
    yields the items of that member only.
    """

    def __init__(self, file, *, wanted):
        self.reader, self.wanted = _Reader(file), wanted
        self.values = []  # Per "value" member: None if not a list, else (count, all objects).

    def check(self) -> int:
        for _ in self._members():
            pass
        if not self.values or self.values[-1] is None or not self.values[-1][0]:
            raise MalformedNotification(NO_LIST)
        if not self.values[-1][1]:
            raise MalformedNotification(NOT_OBJECTS)
        return len(self.values) - 1

    def items(self):
        for item in self._members():
            if not isinstance(item, dict):
                raise MalformedNotification(NOT_OBJECTS)
            yield item

    def _members(self):
        reader = self.reader
        first = reader.peek()
        if first != "{":
            raise MalformedNotification(
                NO_LIST if first and first in '["-0123456789tfnNI' else NOT_JSON
            )
        reader.pos += 1
        if reader.peek() == "}":
            reader.pos += 1
        else:
            while True:
                yield from self._member()
                if reader.peek() != ",":
                    break
                reader.pos += 1
            reader.expect("}")
        if reader.peek() != "":
            raise MalformedNotification(NOT_JSON)

    def _member(self):
        reader = self.reader
        if reader.peek() != '"':
            raise MalformedNotification(NOT_JSON)
        key = reader.value()
        reader.expect(":")
        is_value = key == "value"
        ordinal = len(self.values)
        if reader.peek() != "[":
            reader.value()
            if is_value:
                self.values.append(None)
            return
        count, objects = 0, True
        for item in self._array():
            count += 1
            objects = objects and isinstance(item, dict)
            if is_value and ordinal == self.wanted:
                yield item
        if is_value:
            self.values.append((count, objects))

    def _array(self):
        reader = self.reader
        reader.expect("[")
        if reader.peek() == "]":
            reader.pos += 1
            return
        while True:
            yield reader.value()
            if reader.peek() != ",":
                break
            reader.pos += 1
        reader.expect("]")
