"""The one road for realtime events.

Only this package talks to django-eventstream or to the GRIP proxy. Chat and
leaderboard both go through it, so a fix to delivery is made once:

- :mod:`realtime.channels`: the channel names;
- :mod:`realtime.models`: the event log, and how far the publisher got;
- :mod:`realtime.log`: the writes: events stored in the writer's transaction;
- :mod:`realtime.notify`: PostgreSQL LISTEN/NOTIFY, how readers hear of commits;
- :mod:`realtime.storage`: django-eventstream's storage class, reading the log;
- :mod:`realtime.publisher`: the one process that publishes to the proxy
  (``manage.py realtime_publish``);
- :mod:`realtime.proxy`: the proxy's publish API, through gripcontrol;
- :mod:`realtime.stream`: the SSE endpoints;
- :mod:`realtime.direct`: without a proxy, each app process wakes its own streams.
"""
