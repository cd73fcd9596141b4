// Which requests the edge hands to Fanout. Kept apart from index.js (which
// needs the Fastly runtime) so that `make test` checks it with plain Node.
//
// Only the SSE endpoints go through Fanout: the chat room streams, and the
// leaderboard URL when the client asks for an event stream (the same URL
// answers JSON otherwise). Everything else is an ordinary request.

const ROOM_EVENTS = /^\/rooms\/[A-Za-z0-9_-]{1,64}\/events\/$/;
const BOARD = /^\/boards\/[^/]+\/$/;

/**
 * @param {string} method
 * @param {string} pathname
 * @param {string | null} accept
 * @returns {boolean}
 */
export function handsOffToFanout(method, pathname, accept) {
  if (method !== "GET" && method !== "HEAD") return false;
  if (ROOM_EVENTS.test(pathname)) return true;
  return BOARD.test(pathname) && wantsEventStream(accept);
}

/**
 * Whether an Accept header lists text/event-stream (EventSource sends exactly that).
 * @param {string | null} accept
 */
export function wantsEventStream(accept) {
  return (accept || "")
    .split(",")
    .some((part) => part.split(";")[0].trim().toLowerCase() === "text/event-stream");
}

/** Only hashed static files may be cached at the edge; the app's answers are live. */
export function cacheable(pathname) {
  return pathname.startsWith("/static/");
}
