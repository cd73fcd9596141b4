"""The one road for realtime events.

Only this package talks to django-eventstream or to the GRIP proxy. Chat and
leaderboard both go through it, so a fix to delivery is made once:

- :mod:`realtime.channels`: the channel names;
- :mod:`realtime.log`: the writes: events stored in the writer's transaction;
- :mod:`realtime.storage`: django-eventstream's storage class, reading the log;
- :mod:`realtime.publish`: delivery of committed events to streams and the proxy;
- :mod:`realtime.stream`: the SSE endpoints;
- :mod:`realtime.health`: what the health check asks of the proxy.
"""
