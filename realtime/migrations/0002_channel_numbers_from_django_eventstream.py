"""Carry each channel's event numbering over from django-eventstream's own tables.

Chat messages keep their event's id (``Message.event_id``), and the history
endpoint hands the newest one out as a resume point: the log must go on
numbering from there. The old events themselves are not copied; a client that
resumes from one of them gets ``stream-reset`` and starts afresh.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def copy_counters(apps: Any, schema_editor: Any) -> None:
    old = apps.get_model("django_eventstream", "EventCounter")
    channel = apps.get_model("realtime", "Channel")
    channel.objects.bulk_create(
        [channel(name=c.name, last_id=c.value) for c in old.objects.all().iterator()],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("realtime", "0001_initial"),
        ("django_eventstream", "0001_initial"),
    ]

    operations = [migrations.RunPython(copy_counters, migrations.RunPython.noop)]
