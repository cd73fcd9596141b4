// Leaderboard: the standings come rendered in the page; every `update` event
// on the stream carries the whole standings, which replace what is shown.
// Players are keyed by id, so a row keeps its element (and its button's focus)
// while its score rolls and it slides to its new rank.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("board-config").textContent);
  const list = document.getElementById("standings");
  const status = document.getElementById("status");
  const empty = document.getElementById("empty");
  const clickError = document.getElementById("click-error");
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

  const rows = new Map(); // player id -> row

  // --- one row -------------------------------------------------------------
  // textContent only: no name is ever parsed as HTML.
  function element(tag, className, text) {
    const el = document.createElement(tag);
    el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function upgrade(li) {
    // Turn a row (rendered by the server or just created) into a live one.
    const score = li.querySelector(".score");
    const value = Number(score.textContent);
    score.textContent = "";
    const row = {
      li,
      rank: li.querySelector(".rank"),
      name: li.querySelector(".name"),
      button: li.querySelector(".plus"),
      score,
      label: element("span", "visually-hidden"),
      odometer: element("span", "odometer"),
      value: null,
    };
    row.odometer.setAttribute("aria-hidden", "true");
    score.append(row.label, row.odometer);
    setScore(row, value, false);
    rows.set(Number(li.dataset.id), row);
    return row;
  }

  function create(player) {
    const li = element("li", "player");
    li.dataset.id = String(player.id);
    const button = element("button", "plus", "+1");
    button.type = "button";
    li.append(
      element("span", "rank"),
      element("span", "name"),
      element("span", "score", String(player.score)),
      button,
    );
    return upgrade(li);
  }

  // --- odometer: one column of 0-9 per digit, rolled to the digit --------------
  function column() {
    const col = element("span", "digit");
    const strip = element("span", "strip");
    for (let d = 0; d <= 9; d += 1) strip.append(element("span", "", String(d)));
    col.append(strip);
    roll(col, 0, false);
    return col;
  }

  function roll(col, digit, animate) {
    const strip = col.firstElementChild;
    if (!animate) strip.style.transition = "none";
    strip.style.transform = `translateY(${-10 * digit}%)`;
    if (!animate) {
      void strip.offsetHeight; // apply the jump before transitions come back
      strip.style.transition = "";
    }
  }

  function setScore(row, value, animate) {
    if (row.value === value) return;
    const rising = row.value !== null && value > row.value;
    row.value = value;
    const text = String(value);
    row.score.dataset.score = text;
    row.label.textContent = text;
    const odometer = row.odometer;
    while (odometer.children.length < text.length) odometer.prepend(column());
    while (odometer.children.length > text.length) odometer.firstElementChild.remove();
    Array.from(odometer.children).forEach((col, i) => roll(col, Number(text[i]), animate));
    if (animate && rising) {
      row.li.classList.remove("scored");
      void row.li.offsetWidth; // restart the highlight
      row.li.classList.add("scored");
    }
  }

  // --- the standings -----------------------------------------------------------
  // Put the rows in `order` without ever moving the row that holds focus: taking
  // an element out of the list and back blurs its button and cancels a Space
  // press (or mouse press) in progress, so that click would be lost. The other
  // rows are moved around it instead, and only those out of place.
  function place(order) {
    const anchor = order.find((li) => li.contains(document.activeElement));
    const k = anchor ? order.indexOf(anchor) : -1;
    for (let i = k - 1; i >= 0; i -= 1) {
      if (order[i].nextElementSibling !== order[i + 1]) list.insertBefore(order[i], order[i + 1]);
    }
    if (k < 0 && list.firstElementChild !== order[0] && order.length) {
      list.insertBefore(order[0], list.firstChild);
    }
    for (let i = Math.max(k, 0) + 1; i < order.length; i += 1) {
      const previous = order[i - 1];
      if (order[i].previousElementSibling !== previous) {
        list.insertBefore(order[i], previous.nextSibling);
      }
    }
  }

  function apply(standings, animate) {
    const motion = animate && !reducedMotion.matches;
    const before = new Map();
    if (motion) for (const [id, row] of rows) before.set(id, row.li.getBoundingClientRect().top);

    const order = standings.players.map((player, index) => {
      const row = rows.get(player.id) || create(player);
      if (row.name.textContent !== player.name) row.name.textContent = player.name;
      row.button.setAttribute("aria-label", `+1 for ${player.name}`);
      row.rank.textContent = String(index + 1);
      setScore(row, player.score, animate);
      return row.li;
    });
    const keep = new Set(order);
    for (const [id, row] of rows) {
      if (!keep.has(row.li)) {
        row.li.remove();
        rows.delete(id);
      }
    }
    place(order);
    empty.hidden = rows.size > 0;

    if (!motion) return;
    // FLIP: each row starts where it was and slides to its new place.
    for (const [id, top] of before) {
      const row = rows.get(id);
      if (!row) continue;
      const dy = top - row.li.getBoundingClientRect().top;
      if (Math.abs(dy) < 1) continue;
      // A row that climbs passes over the rows it overtakes.
      row.li.style.zIndex = dy > 0 ? "1" : "";
      const slide = row.li.animate(
        [{ transform: `translateY(${dy}px)` }, { transform: "translateY(0)" }],
        { duration: 400, easing: "cubic-bezier(0.2, 0.8, 0.2, 1)" },
      );
      slide.addEventListener("finish", () => {
        row.li.style.zIndex = "";
      });
    }
  }

  for (const li of Array.from(list.children)) upgrade(li);

  // While a pointer is pressed on the list, an update waits: a row that moved
  // between the press and the release would take the click for another
  // player, or lose it (the click goes to the common ancestor of the two
  // targets). It is shown once the click has been dispatched.
  let pressing = false;
  let pressTimer = 0;
  let held = null;

  function show(standings, animate) {
    if (pressing) {
      held = [standings, animate];
      list.dataset.held = "true";
      return;
    }
    apply(standings, animate);
  }

  function release() {
    clearTimeout(pressTimer);
    pressing = false;
    // After this task: the click that follows the release still finds its row.
    setTimeout(() => {
      if (pressing || !held) return;
      const [standings, animate] = held;
      held = null;
      delete list.dataset.held;
      apply(standings, animate);
    });
  }

  list.addEventListener("pointerdown", () => {
    pressing = true;
    // A release this page never hears of (the pointer left the window, the
    // window lost focus) must not freeze the standings: a press is not held
    // for longer than this.
    clearTimeout(pressTimer);
    pressTimer = setTimeout(release, 2000);
  });
  window.addEventListener("pointerup", release);
  window.addEventListener("pointercancel", release);
  window.addEventListener("blur", release);

  // --- the stream ----------------------------------------------------------------
  // Event ids look like "board-7:42". Within one connection they only grow; the
  // first update after each (re)connect is the current standings, so it is
  // always applied, even when the server's ids went back (a reset database).
  let lastApplied = 0;
  let fresh = true;

  function eventNumber(id) {
    const match = /:(\d+)$/.exec(id || "");
    return match ? Number(match[1]) : null;
  }

  async function reload() {
    // stream-reset: the server could not replay the standings; ask for them.
    const appliedBefore = lastApplied;
    try {
      const response = await fetch(config.boardUrl, { headers: { Accept: "application/json" } });
      if (response.ok && lastApplied === appliedBefore) show(await response.json(), true);
    } catch (_) {
      /* the stream reports the outage */
    }
  }

  window.liveStream({
    url: config.boardUrl,
    status,
    onOpen: () => {
      fresh = true;
    },
    handlers: {
      update: (standings, event) => {
        const number = eventNumber(event.lastEventId);
        if (!fresh && number !== null && number <= lastApplied) return false; // not newer
        fresh = false;
        if (number !== null) lastApplied = number;
        show(standings, true);
        return true;
      },
      "stream-reset": () => {
        fresh = true;
        reload();
      },
    },
  });

  // --- clicks ----------------------------------------------------------------------
  // The score shown comes only from the stream, so that it never goes back:
  // a click's own answer may be older than an update already applied. Each
  // click has its own Idempotency-Key, kept across its retries (static/js/send.js),
  // so a click is counted once however often it has to be sent.
  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button.plus");
    if (!button) return;
    const id = button.closest("li.player").dataset.id;
    try {
      const response = await window.sendOnce(
        `${config.boardUrl}players/${encodeURIComponent(id)}/score-add/`,
        { method: "POST", headers: { Accept: "application/json" } },
      );
      if (response.ok) {
        clickError.hidden = true;
        return;
      }
      const wait = window.sendOnce.tooManyWait(response);
      const body = await response.json().catch(() => ({}));
      clickError.textContent =
        wait !== null
          ? `Too many clicks, try again in ${wait} s.`
          : `Not counted: ${body.error || `HTTP ${response.status}`}`;
    } catch (_) {
      clickError.textContent = "Not counted: the server could not be reached. Try again.";
    }
    clickError.hidden = false;
  });
})();
