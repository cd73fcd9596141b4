"""Rate limits on writes, counted per client in the database that every app process shares.

- :mod:`ratelimit.limits`: the entry point, :func:`~ratelimit.limits.rate_limited`, a view
  decorator that charges one request to the client's bucket of a named limit
  (``settings.RATE_LIMITS``) and refuses it with :class:`base.errors.RateLimited` (a 429
  with ``Retry-After``) when the bucket is empty;
- :mod:`ratelimit.buckets`: the counter, a token bucket per (limit, client) row, charged by
  one atomic statement;
- :mod:`ratelimit.rates`: a limit's value, ``N/<period>`` or ``off``, read from the
  environment.

It knows nothing of proxies: who the client is, the caller says (the views pass
:func:`realtime.clients.client_address`). It imports Django and :mod:`base` only.
"""
