/// <reference types="@fastly/js-compute" />
// A Fastly Compute app in front of the Django app: SSE requests go through
// Fanout (which holds the stream and verifies nothing: the app does, with
// GRIP_VERIFY_KEY), everything else straight to the origin. See docs/DEPLOY.md.
import { CacheOverride } from "fastly:cache-override";
import { createFanoutHandoff } from "fastly:fanout";

import { cacheable, handsOffToFanout } from "./routing.js";

const BACKEND = "origin"; // the service's backend pointing at the app (or its load balancer)

addEventListener("fetch", (event) => event.respondWith(handle(event)));

async function handle(event) {
  const request = event.request;
  // The client's address, which the app's rate limits count (RATE_LIMIT_CLIENT_HEADER=
  // Fastly-Client-IP): set here, over whatever the client sent, which Compute passes on.
  request.headers.set("Fastly-Client-IP", event.client.address);
  const url = new URL(request.url);
  if (handsOffToFanout(request.method, url, request.headers.get("accept"))) {
    return createFanoutHandoff(request, BACKEND);
  }
  return fetch(request, {
    backend: BACKEND,
    cacheOverride: new CacheOverride(cacheable(url.pathname) ? "none" : "pass"),
  });
}
