"""ASGI entry point: granian serves it when no GRIP proxy is configured (``python -m
chatdemo.serve``), and ``manage.py runserver`` through daphne.

Channels' ProtocolTypeRouter is the place to add WebSocket routes later; HTTP,
including the direct SSE stream used when no GRIP proxy is in front, goes to
Django's own ASGI handler.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdemo.settings")

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402 - needs Django set up

application = ProtocolTypeRouter({"http": django_asgi_app})
