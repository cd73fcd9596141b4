#!/bin/bash
# CPU per chat POST under each server, same app, same DB; wrk with 8 connections for 15 s.
cd /work/main
PY=.venv/bin/python
export DJANGO_SETTINGS_MODULE=chatdemo.settings DJANGO_DEBUG=0 DJANGO_HTTPS=0 \
  DJANGO_SECRET_KEY=bench-only-secret-key-not-for-production-0123456789abcdef \
  DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost DJANGO_LOG_LEVEL=WARNING \
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatdemo_compare_new \
  GRIP_URL="http://127.0.0.1:9/?iss=pushpin&key=changeme-local-development-grip-signing-key" \
  DATABASE_POOL_MAX_SIZE=8
cpu() { awk '{print $14+$15+$16+$17}' /proc/$1/stat; }
treecpu() { t=0; for p in $(pgrep -g $1); do c=$(cpu $p 2>/dev/null || echo 0); t=$((t+c)); done; echo $t; }
for round in 1 2; do
for server in daphne uvicorn granian-asgi granian-wsgi; do
  port=$((24000 + RANDOM % 1000))
  case $server in
    daphne) cmd="$PY -m daphne -b 127.0.0.1 -p $port --proxy-headers chatdemo.asgi:application";;
    uvicorn) cmd="$PY -m uvicorn --host 127.0.0.1 --port $port --no-access-log --log-level warning chatdemo.asgi:application";;
    granian-asgi) cmd=".venv/bin/granian --interface asgi --host 127.0.0.1 --port $port --workers 1 --log-level warning chatdemo.asgi:application";;
    granian-wsgi) cmd=".venv/bin/granian --interface wsgi --host 127.0.0.1 --port $port --workers 1 --blocking-threads 8 --log-level warning chatdemo.wsgi:application";;
  esac
  setsid $cmd > /tmp/server-$server.log 2>&1 &
  pid=$!
  for i in $(seq 1 60); do curl -s -o /dev/null http://127.0.0.1:$port/healthz && break; sleep 0.5; done
  wrk -t1 -c8 -d3s -s /tmp/post.lua http://127.0.0.1:$port/rooms/wrk/messages/ > /dev/null
  before=$(treecpu $pid)
  out=$(wrk -t1 -c8 -d15s -s /tmp/post.lua http://127.0.0.1:$port/rooms/wrk/messages/)
  after=$(treecpu $pid)
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  ticks=$((after-before))
  echo "$server round=$round req/s=$rps requests=$reqs non2xx=${non2xx:-0} cpu_s=$(echo "scale=2; $ticks/100" | bc) cpu_ms_per_post=$(echo "scale=2; $ticks*10/$reqs" | bc)"
  kill -TERM -$pid; sleep 1; kill -KILL -$pid 2>/dev/null; sleep 1
done
done
