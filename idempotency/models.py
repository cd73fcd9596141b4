"""The first answer to each ``Idempotency-Key``, kept so that a retry gets it again."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class IdempotencyKey(models.Model):
    """One key a client sent with a write, what that write was, and the answer it got.

    The row is inserted in the transaction of the write it guards, so the key
    exists exactly when the write committed. ``status`` is empty only while
    that transaction runs.
    """

    key = models.CharField(max_length=255, unique=True)
    # sha256 of the method, path, Content-Type and body of the first request.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True)
    content_type = models.CharField(max_length=255, blank=True)
    body = models.BinaryField(default=b"")
    created = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.key} -> {self.status}"
