// Chat room: the history comes in the page's config, older pages as the list is
// scrolled up, live messages over SSE, and render() draws them all, and the
// messages still being sent. Every message is placed by id, so it appears once
// and in order whether it came from the page, from an older page, from our own
// POST's answer, or from the stream. A message deleted by a moderator (a
// message-delete event) is removed, and never shown again.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const list = document.getElementById("messages");
  const form = document.getElementById("send");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  const sendError = document.getElementById("send-error");
  const edge = document.getElementById("history-edge"); // the list's first item, above every message

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  const shown = new Map(); // message id -> <li>
  const deleted = new Set(); // message ids; our own POST's answer may come after the delete

  function formatTime(el) {
    const date = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(date.getTime())) {
      el.textContent = timeFormat.format(date);
      el.title = fullFormat.format(date);
    }
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToNewest() {
    list.scrollTop = list.scrollHeight;
  }

  // One message as the API gives it ({id, from, date, text}); a message still
  // being sent has no id and no date yet, and shows `state` in place of its time.
  function render(message, state = null) {
    // textContent only: nothing a user typed is ever parsed as HTML.
    const li = document.createElement("li");
    li.className = "message";
    if (message.id != null) li.dataset.id = String(message.id);
    if (message.from === config.nickname) li.classList.add("mine");
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = message.from;
    let when;
    if (state === null) {
      when = document.createElement("time");
      when.setAttribute("datetime", message.date);
      formatTime(when);
    } else {
      when = document.createElement("span");
      when.className = "state";
      when.textContent = state;
    }
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = message.text;
    li.append(from, when, text);
    return li;
  }

  // Show a message that is new to the page, and say whether it was.
  function add(message) {
    if (shown.has(message.id) || deleted.has(message.id)) return false;
    const stick = nearBottom();
    const li = render(message);
    // Insert by id: usually at the end, but our own POST's answer may race the stream.
    let before = null;
    for (let node = list.lastElementChild; node !== edge; node = node.previousElementSibling) {
      if (Number(node.dataset.id) < message.id) break;
      before = node;
    }
    list.insertBefore(li, before);
    shown.set(message.id, li);
    if (stick || message.from === config.nickname) scrollToNewest();
    return true;
  }

  function remove(id) {
    deleted.add(id);
    const li = shown.get(id);
    if (li) li.remove();
    shown.delete(id);
  }

  config.messages.forEach(add);
  scrollToNewest();

  // --- older history ----------------------------------------------------------
  // Scrolled to within a screen of the top, the list asks for the page before
  // its oldest message (?before=), until a page comes back short: that one
  // ended at the room's first message. What is inserted above the view must
  // not move it, so the message at the top of the view is kept where it was
  // (by hand: .messages has overflow-anchor: none, so the browser's own
  // anchoring, which some browsers lack, never adds to it).
  let olderState = "more"; // "more", "loading", "failed" or "start"

  function keepingTopInPlace(change) {
    const top = list.getBoundingClientRect().top;
    let anchor = null;
    for (let li = edge.nextElementSibling; li; li = li.nextElementSibling) {
      if (li.getBoundingClientRect().bottom > top) {
        anchor = li;
        break;
      }
    }
    const offset = anchor ? anchor.getBoundingClientRect().top - top : 0;
    change();
    if (anchor) list.scrollTop += anchor.getBoundingClientRect().top - top - offset;
  }

  function setOlderState(state) {
    olderState = state;
    edge.dataset.state = state;
    if (state === "start") {
      edge.textContent = "This is the start of the room";
    } else if (state === "failed") {
      edge.textContent = "Could not load older messages. ";
      const retry = document.createElement("button");
      retry.type = "button";
      retry.textContent = "Try again";
      retry.addEventListener("click", () => loadOlder());
      edge.append(retry);
    } else {
      edge.textContent = "Loading older messages…";
    }
  }

  // A page of older messages, newest first as the API gives them.
  function addOlder(messages) {
    let next = edge.nextElementSibling;
    for (const message of messages.slice().reverse()) {
      if (shown.has(message.id)) continue;
      while (next && Number(next.dataset.id) < message.id) next = next.nextElementSibling;
      const li = render(message);
      list.insertBefore(li, next);
      shown.set(message.id, li);
    }
  }

  async function loadOlder() {
    if (olderState === "loading" || olderState === "start") return;
    const oldest = edge.nextElementSibling;
    keepingTopInPlace(() => setOlderState("loading"));
    let messages;
    try {
      const url = `${config.messagesUrl}?before=${oldest.dataset.id}`;
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      messages = (await response.json()).messages;
    } catch (_) {
      keepingTopInPlace(() => setOlderState("failed"));
      return;
    }
    keepingTopInPlace(() => {
      addOlder(messages);
      setOlderState(messages.length < config.historyPage ? "start" : "more");
    });
    loadOlderIfNearTop(); // a short page may leave the top in sight
  }

  function loadOlderIfNearTop() {
    if (olderState === "more" && list.scrollTop < list.clientHeight) loadOlder();
  }

  setOlderState(config.messages.length < config.historyPage ? "start" : "more");
  list.addEventListener("scroll", loadOlderIfNearTop, { passive: true });
  loadOlderIfNearTop();

  // --- unread count -----------------------------------------------------------
  // While the tab is hidden, its title counts the others' messages that arrive
  // live, as "(3) #lobby · Chat"; shown again, it is back to "#lobby · Chat".
  const title = document.title;
  let unread = 0;

  function countIfUnseen(message) {
    if (document.visibilityState !== "hidden" || message.from === config.nickname) return;
    unread += 1;
    document.title = `(${unread}) ${title}`;
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") return;
    unread = 0;
    document.title = title;
  });

  // --- the stream -----------------------------------------------------------
  async function resync() {
    // The server told us we are too far behind (stream-reset): reload history.
    // Shown before the fetch, so stored before it: missing from the history
    // (unless older than its oldest), they were deleted meanwhile.
    const before = [...shown.keys()];
    try {
      const response = await fetch(config.messagesUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const body = await response.json();
      const kept = new Set(body.messages.map((message) => message.id));
      const oldest = body.messages.length ? body.messages[body.messages.length - 1].id : 0;
      before.filter((id) => id >= oldest && !kept.has(id)).forEach(remove);
      body.messages.slice().reverse().forEach(add);
    } catch (_) {
      /* the stream reports the outage */
    }
  }

  window.liveStream({
    url: config.eventsUrl,
    status,
    lastEventId: config.lastEventId,
    handlers: {
      message: (message) => {
        if (add(message)) countIfUnseen(message);
      },
      "message-delete": ({ id }) => remove(id),
      "stream-reset": () => resync(),
    },
  });

  // --- sending ----------------------------------------------------------------
  // The input is cleared as soon as a message is handed over, so the next one
  // can be typed at once. Handed-over messages wait in the outbox ("Sending…")
  // and are posted one at a time, so they are stored in the order they were
  // sent. One that fails goes back into the input, with the reason, unless
  // something new has been typed there; then it stays in the outbox as "Not
  // sent", with a button to send it again. Nothing typed is dropped. Over the
  // rate limit (429), the page says how long to wait, and the messages queued
  // behind stay unsent too.
  const outbox = document.getElementById("outbox");
  const queue = []; // {text, li, key}, oldest first; queue[0] is being posted
  let draining = false;

  function showError(text) {
    sendError.textContent = text;
    sendError.hidden = false;
  }

  function outboxItem(text) {
    const li = render({ from: config.nickname, text }, "Sending…");
    outbox.append(li);
    return li;
  }

  // The stored message, or why it was not stored. Sent again with the same key
  // until it gets an answer (static/js/send.js): stored once, however often sent.
  async function post({ text, key }) {
    const body = new URLSearchParams({ from: config.nickname, text });
    let response;
    try {
      response = await window.sendOnce(config.messagesUrl, { method: "POST", body }, { key });
    } catch (_) {
      return { reason: "the server could not be reached. Try again." };
    }
    const wait = window.sendOnce.tooManyWait(response);
    if (wait !== null) return { reason: `Too many messages, try again in ${wait} s.`, limited: true };
    const data = await response.json().catch(() => null);
    if (response.ok && data) return { message: data };
    if (data && data.error) return { reason: `${data.field ? `${data.field} ` : ""}${data.error}` };
    return { reason: `the server answered ${response.status}. Try again.` };
  }

  // One key per message, kept when it is sent again by hand: if an earlier
  // send was stored after all, the server answers with that message.
  function enqueue(text, li, key = window.sendOnce.newKey()) {
    queue.push({ text, li, key });
    drain();
  }

  function failed({ text, li, key }, { reason, limited = false }) {
    showError(limited ? reason : `Not sent: ${reason}`);
    if (input.value === "") {
      li.remove();
      input.value = text;
      return;
    }
    li.classList.add("failed");
    li.querySelector(".state").textContent = "Not sent";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.textContent = "Send again";
    retry.addEventListener("click", () => {
      retry.remove();
      li.classList.remove("failed");
      li.querySelector(".state").textContent = "Sending…";
      outbox.append(li); // behind whatever is still waiting: it is sent after them
      enqueue(text, li, key);
    });
    li.querySelector(".state").after(retry);
  }

  async function drain() {
    if (draining) return;
    draining = true;
    while (queue.length > 0) {
      const item = queue[0];
      const result = await post(item);
      queue.shift();
      if (result.message) {
        item.li.remove();
        add(result.message);
      } else {
        failed(item, result);
        // Over the limit, the messages behind it would be refused too: keep them unsent.
        if (result.limited) queue.splice(0).forEach((later) => failed(later, result));
      }
    }
    draining = false;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    sendError.hidden = true;
    input.value = "";
    input.focus();
    enqueue(text, outboxItem(text));
  });
})();
