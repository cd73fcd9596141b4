"""Settings for the chat and leaderboard demo.

Every value that differs between a laptop and production comes from the
environment; `.env.example` lists them all. Defaults serve local development,
but nothing insecure is ever assumed silently: with `DJANGO_DEBUG` off, a
missing `DJANGO_SECRET_KEY` stops start-up with a message that names it.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from base.env import env_bool, env_header, env_int, env_list, env_networks
from chatdemo.framing import frame_ancestors_policy
from ratelimit.rates import env_rate
from realtime.gripconf import grip_settings

BASE_DIR = Path(__file__).resolve().parent.parent

# Django's generic classes (ModelAdmin[Message]) subscriptable at run time, as the
# strict type checks (make lint) write them.
django_stubs_ext.monkeypatch()


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DJANGO_DEBUG=1 for local development."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# --- HTTPS and security headers ---------------------------------------------
# DJANGO_HTTPS says the site is served over HTTPS (on unless DEBUG): http is
# redirected, cookies are Secure, and browsers are told to stay on HTTPS
# (HSTS). Only a local plain-HTTP stack (docker compose on localhost) turns it off.
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
# Load balancers and container probes ask over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz(/live|/ready)?/?$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# Preloading is a commitment the domain's owner makes with the browser vendors.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Origins that may show the pages in a frame (CSP frame-ancestors), separated
# by spaces or commas. Empty: none may (see chatdemo/framing.py).
FRAME_ANCESTORS = os.environ.get("DJANGO_FRAME_ANCESTORS", "").replace(",", " ").split()
FRAME_ANCESTORS_POLICY = frame_ancestors_policy(FRAME_ANCESTORS)
# Behind a proxy that terminates TLS (Fastly, a load balancer), the app sees
# plain HTTP; trust the proxy's X-Forwarded-Proto only when told to, because
# a client could send it too when nothing in front overwrites it.
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_eventstream",
    "realtime",
    "idempotency",
    "ratelimit",
    "chatdemo",
    "chat",
    "leaderboard",
]

MIDDLEWARE = [
    # Outermost, so that every error answer is in the API's shape, GripMiddleware's
    # own included (it refuses a malformed WebSocket-over-HTTP body in plain
    # text); and a database fault is a 503 (see the module).
    "chatdemo.errors.ErrorMiddleware",
    # Next, so that every later layer (and the views) can read request.grip,
    # and so that it turns the GRIP instruction into headers last.
    "django_grip.GripMiddleware",
    # One log line per request, with its status.
    "chatdemo.requestlog.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatdemo.framing.FrameAncestorsMiddleware",
    # Last: keeps the chain above it in one thread under ASGI (see the module).
    "chatdemo.syncchain.SyncChainMiddleware",
]

ROOT_URLCONF = "chatdemo.urls"
WSGI_APPLICATION = "chatdemo.wsgi.application"
ASGI_APPLICATION = "chatdemo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatdemo"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# The publisher's and direct mode's listener need a session of their own (LISTEN, the
# publisher's advisory lock): with app processes behind a pooler in transaction mode,
# point this straight at PostgreSQL (realtime.notify). Empty: DATABASE_URL's database.
DATABASE_LISTEN_URL = os.environ.get("DATABASE_LISTEN_URL", "")
# A psycopg pool per process, on by default for PostgreSQL: its threads share
# DATABASE_POOL_MAX_SIZE connections, so a flood of requests queues for one
# (at most DATABASE_POOL_TIMEOUT seconds, then a 503 with Retry-After, as for
# any database fault: chatdemo.errors) instead of each opening its own until
# PostgreSQL refuses more (max_connections). It also takes the connect out of
# each request (docs/BENCHMARKS.md). The default covers a WSGI worker's 8
# threads (chatdemo.serve) with room for the stream refreshes; keep
# APP_WORKERS x DATABASE_POOL_MAX_SIZE, plus the publisher's, below
# max_connections. 0 turns the pool off; it replaces DATABASE_CONN_MAX_AGE.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 10)
DATABASE_POOL_TIMEOUT = env_int("DATABASE_POOL_TIMEOUT", 5)
if DATABASE_POOL_MAX_SIZE > 0 and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured(
            "Set DATABASE_POOL_MAX_SIZE or DATABASE_CONN_MAX_AGE, not both: "
            "a pooled connection goes back to the pool after each request "
            "(DATABASE_POOL_MAX_SIZE=0 turns the pool off)."
        )
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": DATABASE_POOL_TIMEOUT,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded fallback of `make run`. BEGIN IMMEDIATE takes SQLite's write
    # lock when a transaction starts, so writers queue up as they do on
    # PostgreSQL's row lock (realtime.log.lock_channel's select_for_update is a
    # no-op on SQLite) instead of failing with "database is locked" on upgrade.
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A chat message is at most 5,000 characters (chat.validation.TEXT_MAX_LENGTH), which fits
# even in 4-byte characters percent-encoded; no API body needs more than this.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

# The nickname lives in a signed cookie: no session table, no write per page.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_HTTPONLY = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", "").strip() or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Realtime -------------------------------------------------------------
# GRIP_URL points at the proxy's publish API (several proxies: their URLs separated
# by commas or spaces). Each entry's `key` also verifies the Grip-Sig header that
# the proxy signs each request with, so a client that forges Grip-Sig is never
# trusted as the proxy. Empty means "no proxy": the app streams SSE itself over ASGI.
#
# Fastly Fanout signs Grip-Sig with ES256: set GRIP_VERIFY_KEY to its public
# key (PEM or "base64:...") and keep verify-iss=fastly:<service id> in
# GRIP_URL. realtime.gripconf refuses a configuration under which a forged
# Grip-Sig could pass (see its docstring).
# What django_grip and the publisher read is GRIP_PROXIES, one entry per proxy; GRIP_URL
# itself is not a setting (django_grip would add it to GRIP_PROXIES on every request).
DEFAULT_GRIP_URL = (
    "http://127.0.0.1:5561/?iss=pushpin&key=changeme-local-development-grip-signing-key"
)
GRIP_PROXIES = grip_settings(
    url=os.environ.get("GRIP_URL", DEFAULT_GRIP_URL),
    verify_key=os.environ.get("GRIP_VERIFY_KEY", ""),
    verify_iss=os.environ.get("GRIP_VERIFY_ISS", ""),
).proxies

# Events are stored in our event log (realtime.models), in PostgreSQL: a
# client that reconnects with Last-Event-ID, and Pushpin's recovery requests,
# are answered from it through django-eventstream's storage class.
EVENTSTREAM_STORAGE_CLASS = "realtime.storage.EventLogStorage"
# A stream's channel comes from its URL only, never from ?channel= (realtime.eventstream).
EVENTSTREAM_CHANNELMANAGER_CLASS = "realtime.eventstream.ViewChannelManager"
# How long the log keeps events for clients that resume; a channel's latest
# event is kept however old it is.
REALTIME_EVENT_RETENTION_HOURS = env_int("REALTIME_EVENT_RETENTION_HOURS", 24)
# Events per answer to a resume or recovery request behind the proxy (at most 100:
# django-eventstream asks for no more). An answer always holds the stream
# (realtime.storage); when it leaves events behind, the proxy comes back for them
# after REALTIME_CATCH_UP_SECONDS: 0, at once, so that a stream catches up at one
# page per round trip, not one page per second.
REALTIME_PAGE_SIZE = env_int("REALTIME_PAGE_SIZE", 100)
REALTIME_CATCH_UP_SECONDS = env_int("REALTIME_CATCH_UP_SECONDS", 0)
# The publisher process (manage.py realtime_publish): events per batch; how
# long it waits for a notification before it looks anyway (on SQLite, its poll
# interval, as for direct-mode streams); and how often it re-reads every
# channel, for anything whose notification was lost.
REALTIME_PUBLISH_BATCH = env_int("REALTIME_PUBLISH_BATCH", 500)
# Backpressure: a chat message is refused (503, Retry-After) while this many of its
# room's events wait for the publisher, as when it or the proxy cannot keep up or is
# down, instead of being delivered ever later. 0: no limit. With no proxy, no limit.
REALTIME_MAX_BACKLOG = env_int("REALTIME_MAX_BACKLOG", 1000)
REALTIME_POLL_MS = env_int("REALTIME_POLL_MS", 250)
REALTIME_SWEEP_SECONDS = env_int("REALTIME_SWEEP_SECONDS", 60)
# Every call to a proxy's publish API gives up after this long (the proxy is then
# marked down and probed again every REALTIME_HEARTBEAT_SECONDS; realtime.proxy).
REALTIME_PUBLISH_TIMEOUT_MS = env_int("REALTIME_PUBLISH_TIMEOUT_MS", 2000)
# How often each publisher writes its heartbeat (realtime.models.PublisherBeat), which
# /healthz reads: a publisher silent for 5 of these is reported dead.
REALTIME_HEARTBEAT_SECONDS = env_int("REALTIME_HEARTBEAT_SECONDS", 1)

# How long Pushpin keeps an idle stream before it re-requests its Grip-Link
# "next" URL. django-eventstream leaves it to Pushpin's default (120 s), which
# makes every idle subscriber cost the origin a request every two minutes
# (django-eventstream issue #174). Missed publishes are recovered well before
# this fires (Pushpin recovers on the next publish's prev-id gap), so the
# timer is only a last resort; 600 s keeps idle cost at one request per
# subscriber per 10 minutes.
EVENTSTREAM_NEXT_LINK_TIMEOUT = env_int("EVENTSTREAM_NEXT_LINK_TIMEOUT", 600)

# A board's standings are published as one snapshot per interval at most,
# however fast the clicks come (the publisher takes them, realtime.publisher): at
# 1,000 subscribers, one update per click overloaded Pushpin near 35 clicks/s
# (docs/BENCHMARKS.md). The last click is always in the last snapshot.
REALTIME_SNAPSHOT_INTERVAL_MS = env_int("REALTIME_SNAPSHOT_INTERVAL_MS", 100)

# How long the answer to a write sent with an Idempotency-Key is kept, so that
# a retry with the same key gets it again instead of writing twice
# (idempotency.keys). At least 24 h, as clients are told.
IDEMPOTENCY_KEY_HOURS = max(env_int("IDEMPOTENCY_KEY_HOURS", 24), 24)

# Chat messages that contain one of these words (comma-separated; whole words or
# phrases, in any case) are refused with a 400 naming the field "text"
# (chat.validation.validate_text). Empty: no word is refused.
CHAT_BLOCKED_WORDS = env_list("CHAT_BLOCKED_WORDS")

# Rate limits on writes, per client, counted in the database every app process shares
# (ratelimit/): N/<period> is N requests at once, refilled evenly over the period; "off"
# turns one off. Posts: 10 at once, then one a second, above anyone typing, below a
# script. Clicks: 30 at once, then 15 a second, above the fastest person's clicking
# (about 10 a second), below a script's.
RATE_LIMITS = {
    "posts": env_rate("RATE_LIMIT_POSTS", "10/10s"),
    "clicks": env_rate("RATE_LIMIT_CLICKS", "30/2s"),
}
# Who the client is (realtime.clients): the header the proxy in front sets to the
# client's address, trusted only on requests that came through it (a verified
# Grip-Sig, or a peer in RATE_LIMIT_TRUSTED_PROXIES); "off": the peer address always.
RATE_LIMIT_CLIENT_HEADER = env_header("RATE_LIMIT_CLIENT_HEADER", "X-Forwarded-For")
RATE_LIMIT_TRUSTED_PROXIES = env_networks("RATE_LIMIT_TRUSTED_PROXIES")

# Worker processes of the app server (chatdemo.serve: granian; WSGI with 8
# threads each behind the proxy, ASGI without one).
APP_WORKERS = env_int("APP_WORKERS", 1)

# --- Logging --------------------------------------------------------------
LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # key=value lines, like the request and publish lines themselves, so that
    # one grep or one log pipeline parses every line the app writes.
    "formatters": {
        "line": {"format": "time=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "chatdemo": {"level": LOG_LEVEL},
        "chat": {"level": LOG_LEVEL},
        "leaderboard": {"level": LOG_LEVEL},
        "realtime": {"level": LOG_LEVEL},
    },
}
