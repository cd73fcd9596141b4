# The app image: Django under granian, static files collected and served by whitenoise.
# docker-compose.yml runs it behind Pushpin; see README "Run it" and docs/DEPLOY.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from the lock alone, so that a code change does not reinstall
# them and every build installs the same files: each is checked against its hash, and
# pip stops if a dependency is missing from the lock. `make lock` writes it from
# pyproject.toml. The project itself is not installed: it runs from /app.
COPY requirements/runtime.txt requirements/
RUN pip install --require-hashes -r requirements/runtime.txt && rm -r requirements

# The code: manage.py, pyproject.toml's [tool.setuptools] packages, templates, static.
COPY manage.py ./
COPY base ./base
COPY chatdemo ./chatdemo
COPY chat ./chat
COPY leaderboard ./leaderboard
COPY realtime ./realtime
COPY idempotency ./idempotency
COPY ratelimit ./ratelimit
COPY templates ./templates
COPY static ./static

# Hashed, compressed static files for whitenoise (CompressedManifestStaticFilesStorage).
# Settings need a secret key to import; this one exists only during the build.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-used-at-run-time GRIP_URL= \
    python manage.py collectstatic --no-input -v 0

RUN useradd --system --uid 10001 --no-create-home app
USER app

EXPOSE 8000
# Migrations and the demo data run once per deploy (the compose `migrate` service),
# not in every app process. The same image runs the publisher, one per database:
# `python manage.py realtime_publish` (the compose `publisher` service).
# granian: WSGI behind the GRIP proxy (GRIP_URL set), ASGI without one (chatdemo/serve.py).
CMD ["python", "-m", "chatdemo.serve", "--host", "0.0.0.0", "--port", "8000"]
