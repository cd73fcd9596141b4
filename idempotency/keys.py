"""Safe retries of writes: the ``Idempotency-Key`` request header.

As in the IETF draft "The Idempotency-Key HTTP Header Field": a client that
sends a write with a key it made up (a UUID) may send it again, with the same
key, when it got no answer. The first request to commit does the write; every
repeat gets that request's answer again (with ``Idempotent-Replayed: true``)
and stores nothing. The same key on a different request (another method,
path, Content-Type or body) is a 422. A repeat that arrives while the first
request is still running waits for it: the key's row is inserted in the
write's transaction, and PostgreSQL makes a second insert of the same key
wait for that transaction to end.

Only successful answers (2xx) are kept: a write that failed stored nothing,
so its retry is simply tried again. Keys are kept ``IDEMPOTENCY_KEY_HOURS``
(24 by default), in the database that every app process shares. Without the
header a write behaves as the original API did.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from base.errors import InvalidField
from base.http import View, json_error, read_body
from idempotency.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Visible ASCII but the quote and backslash; the draft's key is a Structured
# Field string, which may arrive quoted.
_KEY = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,255}$")
# Every this many keys, a write also deletes expired ones (at most _PURGE_LIMIT).
_PURGE_EVERY = 100
_PURGE_LIMIT = 1000


def idempotent(view: View) -> View:
    """Make a POST view's writes safe to retry with ``Idempotency-Key`` (see the module).

    Goes inside :func:`base.http.api_view`, which answers the domain errors it
    raises (a malformed key, a body over the limit) and those of the view: the
    view's write and the key roll back together.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raw = request.headers.get(HEADER)
        if request.method != "POST" or raw is None:
            return view(request, *args, **kwargs)
        key = parse_key(raw)
        fingerprint = _fingerprint(request, read_body(request))
        with transaction.atomic():
            claimed = _claim(key, fingerprint)
            if claimed is None:
                return _replay(key, fingerprint)
            response = view(request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                IdempotencyKey.objects.filter(pk=claimed).update(
                    status=response.status_code,
                    content_type=response.get("Content-Type", ""),
                    body=response.content,
                )
            else:
                # Nothing was stored: neither is the key, so a retry tries again.
                transaction.set_rollback(True)
        if claimed % _PURGE_EVERY == 0:
            purge_expired()
        return response

    return wrapper


def parse_key(raw: str) -> str:
    """The key of a header value: a token, or a quoted string as the draft writes it."""
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not _KEY.match(key):
        raise InvalidField(HEADER, "must be 1 to 255 visible ASCII characters, such as a UUID")
    return key


def _fingerprint(request: HttpRequest, body: bytes) -> str:
    """What makes two requests the same: method, path, Content-Type and body.

    A multipart body is taken without its boundary, which a client picks anew
    for every send of the same form.
    """
    content_type = request.META.get("CONTENT_TYPE", "")
    boundary = request.content_params.get("boundary", "") if request.content_params else ""
    if request.content_type == "multipart/form-data" and boundary:
        content_type = request.content_type
        body = body.replace(boundary.encode("latin-1", "replace"), b"")
    digest = hashlib.sha256()
    for part in (request.method or "", request.path, content_type):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(body)
    return digest.hexdigest()


def _cutoff() -> Any:
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)


def _claim(key: str, fingerprint: str) -> int | None:
    """Insert the key; its id, or None when another request holds it.

    An expired row of the same key is deleted first. When a transaction that
    inserted the key is still open, PostgreSQL makes this insert wait for it.
    """
    IdempotencyKey.objects.filter(key=key, created__lt=_cutoff()).delete()
    table = connection.ops.quote_name(IdempotencyKey._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, fingerprint, content_type, body, created) "  # noqa: S608
            "VALUES (%s, %s, '', %s, %s) ON CONFLICT (key) DO NOTHING RETURNING id",
            [key, fingerprint, b"", timezone.now()],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _replay(key: str, fingerprint: str) -> HttpResponse:
    """The first answer to ``key``, or a 422 when the key came with another request."""
    stored = IdempotencyKey.objects.get(key=key)
    if stored.fingerprint != fingerprint:
        return json_error(
            422, HEADER, "this key was already used with a different request; use a new key"
        )
    response = HttpResponse(
        bytes(stored.body), status=stored.status, content_type=stored.content_type
    )
    response[REPLAYED_HEADER] = "true"
    return response


def purge_expired() -> int:
    """Delete up to ``_PURGE_LIMIT`` expired keys; how many went."""
    expired = list(
        IdempotencyKey.objects.filter(created__lt=_cutoff())
        .order_by("created")
        .values_list("pk", flat=True)[:_PURGE_LIMIT]
    )
    deleted, _ = IdempotencyKey.objects.filter(pk__in=expired).delete()
    return deleted
