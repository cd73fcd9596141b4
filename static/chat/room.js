// Chat room: the history comes in the page's config, live messages over SSE,
// and render() draws both, and the messages still being sent. Every message is
// placed by id, so it appears once and in order whether it came from the page,
// from our own POST's answer, or from the stream. A message deleted by a
// moderator (a message-delete event) is removed, and never shown again.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const list = document.getElementById("messages");
  const form = document.getElementById("send");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  const sendError = document.getElementById("send-error");

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

  function add(message) {
    if (shown.has(message.id) || deleted.has(message.id)) return;
    const stick = nearBottom();
    const li = render(message);
    // Insert by id: usually at the end, but our own POST's answer may race the stream.
    let before = null;
    for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.id) < message.id) break;
      before = node;
    }
    list.insertBefore(li, before);
    shown.set(message.id, li);
    if (stick || message.from === config.nickname) scrollToNewest();
  }

  function remove(id) {
    deleted.add(id);
    const li = shown.get(id);
    if (li) li.remove();
    shown.delete(id);
  }

  config.messages.forEach(add);
  scrollToNewest();

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
      message: (message) => add(message),
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
