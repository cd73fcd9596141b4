"""One token bucket per client and limit: how many requests it may still make at once."""

from __future__ import annotations

from django.db import models


class Bucket(models.Model):
    """A client's bucket of one limit (``scope``), as it was at ``updated``.

    Times are seconds since the epoch, as floats, so that the refill is plain
    arithmetic in one SQL statement on PostgreSQL and SQLite alike. A bucket
    that has had time to fill up again is the same as no row: those rows are
    deleted (:func:`ratelimit.buckets.purge_full`).
    """

    scope = models.CharField(max_length=32)
    client = models.CharField(max_length=255)
    tokens = models.FloatField()
    updated = models.FloatField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "client"], name="ratelimit_bucket_client")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.client}: {self.tokens:.2f}"
