"""Settings for the test suite: the project's settings with a test environment.

The integration fixtures start the app in a subprocess with this same
environment (and DATABASE_URL pointing at the test database).
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatdemo")
# Rate limits off, here and in every app the fixtures start: the suite and its load tools
# post hundreds of messages and clicks from one address, and sessions share no bucket
# budget. Set, not defaulted, so that a developer's own values cannot fail the suite.
# The limits' own tests turn them on (tests/ratelimit/, with their own stack).
os.environ["RATE_LIMIT_POSTS"] = "off"
os.environ["RATE_LIMIT_CLICKS"] = "off"

from chatdemo.settings import *  # noqa: F403

# Each concurrent test run (a developer's, CI's) can name its own test database.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DB_NAME", "test_chatdemo")}  # noqa: F405

# In this process the coalescing interval is 0, so that a service called by a
# test has stored and published its update when it returns. The app that the
# integration fixtures start runs with the default interval.
REALTIME_SNAPSHOT_INTERVAL_MS = 0

# This process talks to the test database through Django's own connections:
# a pool would keep idle connections open that outlive each test (and the
# test database's drop at the end). The app processes the fixtures start
# read chatdemo.settings, and pool as production does.
DATABASES["default"]["OPTIONS"].pop("pool", None)  # noqa: F405
