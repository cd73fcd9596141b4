// Writes that are safe to retry, shared by the chat and the leaderboard pages.
// Every POST carries an Idempotency-Key; when it gets no answer (the network
// or the proxy dropped it), or a 502, 503 or 504, it is sent again with the
// same key, after Retry-After or a growing pause. The server stores a write
// once per key and answers a repeat with the first answer, so a message sent
// twice is still one message, and a click counted once.
//
//   const response = await sendOnce(url, { method: "POST", body }, { key });
//
// Resolves to the last answer; rejects when the server could not be reached at
// all. A 429 (too many writes from this client) is an answer, not retried:
// sendOnce.tooManyWait(response) says how many seconds the server asked to wait. The body must be the same bytes each time: a string or URLSearchParams,
// not FormData (its multipart boundary changes with every send).
(() => {
  "use strict";

  const RETRY_STATUSES = new Set([502, 503, 504]);
  const ATTEMPTS = 6;

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function sendOnce(url, options = {}, { key = newKey() } = {}) {
    const headers = new Headers(options.headers || {});
    headers.set("Idempotency-Key", key);
    let delay = 500;
    for (let attempt = 1; ; attempt++) {
      let response = null;
      try {
        response = await fetch(url, { ...options, headers });
      } catch (error) {
        if (attempt >= ATTEMPTS) throw error;
      }
      if (response && (!RETRY_STATUSES.has(response.status) || attempt >= ATTEMPTS)) {
        return response;
      }
      const retryAfter = response ? Number(response.headers.get("Retry-After")) : 0;
      await pause(retryAfter > 0 ? retryAfter * 1000 : delay);
      delay = Math.min(delay * 2, 8000);
    }
  }

  // Seconds to wait when the server refused a write for coming too fast (429, with
  // Retry-After); null for any other answer.
  function tooManyWait(response) {
    if (response.status !== 429) return null;
    return Math.max(1, Math.ceil(Number(response.headers.get("Retry-After")) || 1));
  }

  sendOnce.newKey = newKey;
  sendOnce.tooManyWait = tooManyWait;
  window.sendOnce = sendOnce;
})();
