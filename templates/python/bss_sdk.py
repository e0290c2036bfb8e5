"""A thin SDK for bss:integration connectors written in Python and built with componentize-py.

It sits on the bindings componentize-py generates from the contract (`wit_world`) and adds what
every connector otherwise writes by hand:

- `guard`: a class decorator for the exported `Connector` class; an uncaught exception in any
  export becomes the contract's `internal` error carrying the exception and its stack, instead of
  a trap (`wasm 'unreachable' instruction executed`). `each` does the same per record of a batch.
- constructors for every `connector-error` variant (`rejected(...)`, `transient(...)`, ...). Each
  returns an `Err`, which is both what a per-record result holds and an exception to `raise`.
- `Client`: JSON over `bss:integration/http`, mapping statuses to the contract's errors (429 +
  Retry-After -> rate-limited, 5xx -> transient, 401/403/404, other 4xx with ConnectWise-style
  bodies -> rejected with fields), with Link-header and JSON-body paging.
- `Settings`: reads server variables and collects every missing or malformed one into ONE
  `invalid-settings` error.
- `three_way`: the contract's three-way update rule over flat field maps.

Only the standard library and the generated bindings are used. The host links WASI with nothing
behind it (no files, environment or sockets): outbound HTTP goes through `Client` only.
"""

import json
import re
import traceback
import urllib.parse

from componentize_py_types import Err, Ok
from wit_world.imports import http
from wit_world.imports import log as wit_log
from wit_world.imports import settings as wit_settings
from wit_world.imports import types
from wit_world.imports.types import FieldError, MissingReference

__all__ = [
    "Ok", "Err", "FieldError",
    "invalid_settings", "unauthorized", "forbidden", "not_found", "rejected", "missing_reference",
    "rate_limited", "transient", "unsupported", "internal", "field_error", "describe",
    "guard", "each", "log", "Client", "Response", "Settings", "three_way", "is_timestamp",
]

# ---------------------------------------------------------------------------------------------
# Errors: one constructor per `connector-error` variant. Each returns `Err(variant)`: `raise` it
# to fail the whole call, or put it in a per-record result list as it is.
# ---------------------------------------------------------------------------------------------


def field_error(field, message):
    return FieldError(field=str(field), message=str(message))


def _fields(problems):
    """`problems`: FieldErrors, (field, message) pairs or a {field: message} dict."""
    if isinstance(problems, dict):
        problems = problems.items()
    out = []
    for p in problems:
        out.append(p if isinstance(p, FieldError) else field_error(p[0], p[1]))
    return out


def invalid_settings(problems):
    """Settings are wrong: one entry per problem key."""
    return Err(types.ConnectorError_InvalidSettings(_fields(problems)))


def unauthorized(message):
    return Err(types.ConnectorError_Unauthorized(str(message)))


def forbidden(message):
    return Err(types.ConnectorError_Forbidden(str(message)))


def not_found(message):
    return Err(types.ConnectorError_NotFound(str(message)))


def rejected(field_or_problems, message=None):
    """`rejected("name", "is too long")` or `rejected([("name", "..."), ...])`."""
    if message is not None:
        return Err(types.ConnectorError_Rejected([field_error(field_or_problems, message)]))
    return Err(types.ConnectorError_Rejected(_fields(field_or_problems)))


def missing_reference(field, entity, bss_id):
    return Err(types.ConnectorError_MissingReference(
        MissingReference(field=field, entity=entity, bss_id=bss_id)))


def rate_limited(retry_after_ms=None):
    """The remote asked to slow down; `retry_after_ms` (an int) when it said how long."""
    return Err(types.ConnectorError_RateLimited(None if retry_after_ms is None else int(retry_after_ms)))


def transient(message):
    return Err(types.ConnectorError_Transient(str(message)))


def unsupported(message):
    return Err(types.ConnectorError_Unsupported(str(message)))


def internal(message):
    return Err(types.ConnectorError_Internal(str(message)))


def describe(error):
    """A `connector-error` (or an `Err` holding one) in words, for logs and warnings."""
    value = error.value if isinstance(error, Err) else error
    name = type(value).__name__.replace("ConnectorError_", "")
    payload = getattr(value, "value", None)
    if isinstance(payload, list):
        payload = "; ".join(f"{f.field}: {f.message}" for f in payload)
    return f"{name}: {payload}"


# The host cuts error texts to 4 KiB; keep the end of the stack, where the bug is.
_MAX_TRACE = 3500


def _internal_from(exc):
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(trace) > _MAX_TRACE:
        trace = "..." + trace[-_MAX_TRACE:]
    return internal(f"uncaught {type(exc).__name__}: {exc}\n{trace}")


def _guarded(method):
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Err:
            raise
        except Exception as exc:  # noqa: BLE001 - this is the point
            raise _internal_from(exc) from None
    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


# Exports whose WIT type has no error to return: an exception there can only trap.
_UNGUARDED = {"manifest"}


def guard(cls):
    """Class decorator for the exported class: every export that returns a `result` turns an
    uncaught exception into `internal` (message: the exception and its stack)."""
    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith("_") and name not in _UNGUARDED:
            setattr(cls, name, _guarded(member))
    return cls


def each(items, handle):
    """`[handle(item) for item in items]` as per-record results: a value becomes `Ok(value)`, a
    raised (or returned) `Err` stays that record's error, any other exception that record's
    `internal` error. The other records go on."""
    results = []
    for item in items:
        try:
            value = handle(item)
            results.append(value if isinstance(value, (Ok, Err)) else Ok(value))
        except Err as err:
            results.append(err)
        except Exception as exc:  # noqa: BLE001
            results.append(_internal_from(exc))
    return results


# ---------------------------------------------------------------------------------------------
# Log
# ---------------------------------------------------------------------------------------------


class _Log:
    """`log.info("...")` etc. into the host's log (tagged with connector and instance; secrets
    redacted). `print` also works: stdout and stderr go to the host's log."""

    def _write(self, level, message):
        wit_log.write(level, str(message))

    def enabled(self, level="debug"):
        return wit_log.enabled(getattr(wit_log.Level, level.upper()))

    def trace(self, message):
        self._write(wit_log.Level.TRACE, message)

    def debug(self, message):
        self._write(wit_log.Level.DEBUG, message)

    def info(self, message):
        self._write(wit_log.Level.INFO, message)

    def warn(self, message):
        self._write(wit_log.Level.WARN, message)

    def error(self, message):
        self._write(wit_log.Level.ERROR, message)


log = _Log()

# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------

_METHODS = {
    "GET": http.Method.GET, "HEAD": http.Method.HEAD, "POST": http.Method.POST,
    "PUT": http.Method.PUT, "PATCH": http.Method.PATCH, "DELETE": http.Method.DELETE,
}


class Response:
    """A response of any status."""

    def __init__(self, raw):
        self.status = raw.status
        self.headers = raw.headers
        self.body = raw.body

    @property
    def ok(self):
        return 200 <= self.status < 300

    def header(self, name):
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        """The body as JSON (empty body: None). A body that does not parse is `transient` (a
        truncated answer is worth retrying)."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise transient(f"the remote answered {self.status} with a body that is not JSON ({exc})") from None

    def link(self, rel="next"):
        """The URL the `Link` header gives for `rel` (RFC 8288), or None."""
        header = self.header("link")
        if not header:
            return None
        for part in header.split(","):
            target, _, params = part.partition(";")
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key.strip().lower() == "rel" and rel in value.strip().strip('"').split():
                    return target.strip().strip("<>")
        return None


def _error_body(response):
    """(message, [FieldError]) from a ConnectWise-style body
    `{"code", "message", "errors": [{"code", "message", "resource", "field"}]}`; text otherwise."""
    try:
        body = json.loads(response.body) if response.body else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text().strip()[:200]
        return (text or f"HTTP {response.status}"), []
    message = str(body.get("message") or body.get("code") or f"HTTP {response.status}")
    fields = []
    for e in body.get("errors") or []:
        if isinstance(e, dict):
            fields.append(field_error(e.get("field") or "", e.get("message") or e.get("code") or "invalid"))
    return message, fields


def _retry_after_ms(response):
    value = (response.header("retry-after") or "").strip()
    if value.isdigit():
        return int(value) * 1000
    return None  # an HTTP-date or nothing: the host uses its own back-off


def status_error(response):
    """The `Err` for a response that is not a success."""
    message, fields = _error_body(response)
    status = response.status
    if status == 429:
        return rate_limited(_retry_after_ms(response))
    if status >= 500:
        return transient(f"the remote failed with {status}: {message}")
    if status == 401:
        return unauthorized(f"the remote refused the credentials ({message})")
    if status == 403:
        return forbidden(f"the remote refused access ({message})")
    if status == 404:
        return not_found(message)
    if 400 <= status < 500:
        return rejected(fields or [("", message)])
    return internal(f"the remote answered {status}: {message}")


def _transport_error(error, url_setting):
    value = getattr(error, "value", None)
    if isinstance(error, (http.HttpError_HostNotAllowed, http.HttpError_PrivateAddress)):
        hint = ""
        if isinstance(error, http.HttpError_PrivateAddress):
            hint = " (for a local test remote, set host.allow-private-network=on)"
        return invalid_settings([(url_setting, f"the host refused to connect: {value}{hint}")])
    if isinstance(error, http.HttpError_Timeout):
        return transient(f"the remote did not answer in time: {value}")
    if isinstance(error, http.HttpError_Transport):
        return transient(f"could not reach the remote: {value}")
    if isinstance(error, http.HttpError_RequestLimit):
        return transient(f"this call used its budget of {value} requests; the rest wait for the next call")
    if isinstance(error, http.HttpError_ResponseTooLarge):
        return internal(f"a response exceeded {value} bytes")
    if isinstance(error, http.HttpError_WriteInDryRun):
        return internal("the connector tried to write during a dry run")
    return internal(f"the connector built a bad request: {value}")


def encode(value):
    """Percent-encodes one query value."""
    return urllib.parse.quote(str(value), safe="")


class Client:
    """JSON over the host's HTTP. `base` is prefixed to relative paths; `headers` go on every
    request (credentials are added by the host, never here). After a 429 in this call, later
    requests are not sent: they fail `rate-limited` at once (the host retries the records)."""

    def __init__(self, base, headers=None, url_setting="url"):
        self.base = base.rstrip("/")
        self.headers = dict(headers or {})
        self.url_setting = url_setting
        self._rate_limited = None

    def url(self, path, query=None):
        url = path if "://" in path else f"{self.base}/{path.lstrip('/')}"
        if query:
            pairs = [f"{encode(k)}={encode(v)}" for k, v in query.items() if v is not None]
            if pairs:
                url += ("&" if "?" in url else "?") + "&".join(pairs)
        return url

    def send(self, method, path, body=None, query=None, headers=None):
        """Sends and returns the `Response` whatever its status; transport failures raise."""
        if self._rate_limited is not None:
            raise self._rate_limited
        all_headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            all_headers["content-type"] = "application/json"
        all_headers.update(headers or {})
        request = http.Request(
            method=_METHODS[method.upper()],
            url=self.url(path, query),
            headers=list(all_headers.items()),
            body=data,
        )
        try:
            return Response(http.send(request))
        except Err as err:
            raise _transport_error(err.value, self.url_setting) from None

    def check(self, response):
        """A success's JSON body, or raises the status's error."""
        if response.ok:
            return response.json()
        error = status_error(response)
        if isinstance(error.value, types.ConnectorError_RateLimited):
            self._rate_limited = error
        raise error

    def request(self, method, path, body=None, query=None, headers=None):
        return self.check(self.send(method, path, body, query, headers))

    def get(self, path, query=None, headers=None):
        return self.request("GET", path, query=query, headers=headers)

    def post(self, path, body, query=None):
        return self.request("POST", path, body=body, query=query)

    def put(self, path, body, query=None):
        return self.request("PUT", path, body=body, query=query)

    def patch(self, path, body, query=None):
        return self.request("PATCH", path, body=body, query=query)

    def delete(self, path, query=None):
        return self.request("DELETE", path, query=query)

    def page(self, path, query=None, headers=None, items=None, next_token=None):
        """One page: (items, response). `items(body)` picks the list out of a JSON body (default:
        the body is the list)."""
        response = self.send("GET", path, query=query, headers=headers)
        body = self.check(response)
        found = items(body) if items else body
        if not isinstance(found, list):
            raise internal(f"expected a list from {path}, got {type(found).__name__}")
        return found, response

    def pages_by_link(self, path, query=None, headers=None, items=None, max_pages=1000):
        """Every item of a list that pages with a `Link: <...>; rel="next"` header."""
        url = self.url(path, query)
        for _ in range(max_pages):
            found, response = self.page(url, headers=headers, items=items)
            yield from found
            url = response.link("next")
            if not url:
                return
        raise internal(f"{path} gave more than {max_pages} pages")

    def pages_by_token(self, path, token_param, next_field, query=None, items=None, max_pages=1000):
        """Every item of a list that pages with a token in the JSON body (`{"items": [...],
        "next": "abc"}`): `next_field` names the body's token, `token_param` the query
        parameter it goes back in."""
        query = dict(query or {})
        for _ in range(max_pages):
            response = self.send("GET", path, query=query)
            body = self.check(response)
            yield from (items(body) if items else body.get("items", []))
            token = body.get(next_field) if isinstance(body, dict) else None
            if not token:
                return
            query[token_param] = token
        raise internal(f"{path} gave more than {max_pages} pages")


def query_param(url, name):
    """A query parameter of a URL (e.g. the `pageId` of a Link header's next URL)."""
    if not url:
        return None
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get(name)
    return values[-1] if values else None


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


class Settings:
    """Reads server variables, noting every problem; `done()` raises one `invalid-settings`
    naming them all. Secrets cannot be read (the host injects them into requests)::

        s = Settings()
        site = s.url("url")
        company = s.text("company-id")
        size = s.integer("page-size", required=False, default=100, minimum=1)
        s.done()
    """

    def __init__(self, get=None):
        self._get = get or wit_settings.get
        self.problems = []

    def problem(self, key, message):
        self.problems.append(field_error(key, message))

    def raw(self, key):
        value = self._get(key)
        value = value.strip() if value is not None else ""
        return value or None

    def text(self, key, required=True, default=None):
        value = self.raw(key)
        if value is None:
            if required and default is None:
                self.problem(key, "is required")
            return default
        return value

    def integer(self, key, required=True, default=None, minimum=None, maximum=None):
        value = self.text(key, required, None)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.problem(key, f"{value!r} is not a whole number")
            return default
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            self.problem(key, f"{number} is out of range ({minimum}..{maximum})")
            return default
        return number

    def choice(self, key, allowed, required=True, default=None):
        value = self.text(key, required, default)
        if value is not None and value not in allowed:
            self.problem(key, f"{value!r} is not one of {', '.join(allowed)}")
            return default
        return value

    def url(self, key, required=True):
        """An http(s) site as `scheme://host[:port]` (https assumed; any path dropped)."""
        value = self.text(key, required)
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep:
            scheme, rest = "https", value
        scheme = scheme.lower()
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if scheme not in ("http", "https"):
            self.problem(key, f"{value!r} must be an http or https address")
            return None
        if not authority or "@" in authority or " " in authority:
            self.problem(key, f"{value!r} is not a site address; give it as host.example.com")
            return None
        return f"{scheme}://{authority}"

    def done(self):
        if self.problems:
            raise invalid_settings(self.problems)


# ---------------------------------------------------------------------------------------------
# Three-way updates (contract 1.2)
# ---------------------------------------------------------------------------------------------


def _same(a, b):
    blank = (None, "")
    return (a in blank and b in blank) or a == b


def three_way(current, desired, base, report_conflicts):
    """The update of one record, field by field, over flat maps (remote field -> value; None or
    "" for empty). `current`: the remote now; `desired`: the BSS now; `base`: what the last push
    asked (None: no last push known).

    - a field the BSS did not change since the last push keeps what the remote has;
    - with no base, what differs is written and nothing is removed;
    - a field both sides changed: `report_conflicts` -> the record is held; else the BSS wins.

    Returns (changes {field: new value or None to remove}, conflicts [(field, remote value,
    last-pushed value)], held)."""
    changes, conflicts = {}, []
    for field, want in desired.items():
        have = current.get(field)
        if _same(have, want):
            continue
        if base is None:
            if want in (None, ""):
                continue  # never remove without knowing the BSS had set it
            changes[field] = want
            continue
        was = base.get(field)
        if _same(was, want):
            continue  # the BSS did not change it: the remote's value stays
        if want in (None, "") and was in (None, ""):
            continue
        if not _same(have, was):
            conflicts.append((field, have, was))
        changes[field] = None if want in (None, "") else want
    held = bool(conflicts) and report_conflicts
    return changes, conflicts, held


_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def is_timestamp(text):
    """Whether `text` is an RFC 3339 timestamp (check a cursor before putting it in a query)."""
    return bool(text) and _TIMESTAMP.match(text) is not None
