"""WSGI entry point. It serves everything except the direct (proxy-less) SSE stream."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdemo.settings")

application = get_wsgi_application()
