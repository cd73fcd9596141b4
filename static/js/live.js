// One live SSE connection with a visible status, shared by the chat and the
// leaderboard pages. It resumes after the last event it saw, on its own:
// - when the browser reconnects by itself (it sends Last-Event-ID);
// - when the browser gives up (say the proxy answered 502): retry with backoff;
// - when the network goes away and comes back: without a network a stream can
//   linger half-open for minutes, and the browser may keep it "open" when the
//   network returns, so drop it when offline and resume as soon as online.
//
//   liveStream({ url, status, lastEventId, handlers: { type(data, event) {...} }, onOpen })
//
// A handler gets the parsed JSON data; returning false means "ignored", and
// then the event's id does not become the resume point.
(() => {
  "use strict";

  window.liveStream = function liveStream({ url, status, lastEventId = "", handlers, onOpen }) {
    let resumeFrom = lastEventId;
    let source = null;
    let retryDelay = 1000;
    let retryTimer = null;
    let lost = false;
    let restoredTimer = null;

    function setStatus(state, text) {
      status.dataset.state = state;
      status.textContent = text;
      status.hidden = false;
      clearTimeout(restoredTimer);
      if (state === "restored") restoredTimer = setTimeout(() => setStatus("live", "Live"), 4000);
    }

    function connectionLost() {
      if (lost) return;
      lost = true;
      setStatus("lost", "Connection lost, reconnecting…");
    }

    function disconnect() {
      clearTimeout(retryTimer);
      retryTimer = null;
      if (source) source.close();
      source = null;
    }

    function connect() {
      disconnect();
      source = new EventSource(
        resumeFrom ? `${url}?lastEventId=${encodeURIComponent(resumeFrom)}` : url,
      );

      source.addEventListener("open", () => {
        retryDelay = 1000;
        if (lost) {
          lost = false;
          setStatus("restored", "Connection restored");
        } else {
          setStatus("live", "Live");
        }
        if (onOpen) onOpen();
      });

      for (const [type, handle] of Object.entries(handlers)) {
        source.addEventListener(type, (event) => {
          const data = event.data ? JSON.parse(event.data) : null;
          if (handle(data, event) !== false && event.lastEventId) resumeFrom = event.lastEventId;
        });
      }

      source.addEventListener("error", () => {
        connectionLost();
        if (source && source.readyState === EventSource.CLOSED) {
          disconnect();
          retryTimer = setTimeout(connect, retryDelay);
          retryDelay = Math.min(retryDelay * 2, 15000);
        }
      });
    }

    window.addEventListener("offline", () => {
      disconnect();
      connectionLost();
    });

    window.addEventListener("online", () => {
      if (source === null) {
        retryDelay = 1000;
        connect();
      }
    });

    connect();
  };
})();
