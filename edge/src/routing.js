// Which requests the edge hands to Fanout. Kept apart from index.js (which
// needs the Fastly runtime) so that `make test` checks it with plain Node.
//
// The rule is the app's: a request goes to Fanout exactly when the app would
// answer it with an event stream. A stream request that reaches the origin
// without Fanout gets a 421, and anything else handed to Fanout is billed and
// never cached. So this module repeats, in JS, what the app does with a
// request: how Django decodes its path; which paths reach a stream view
// (chat/urls.py, leaderboard/urls.py: each with and without its final slash,
// see chatdemo/http.py api_path); which room names chat/validation.py
// validate_room accepts and which ids leaderboard/validation.py parse_id
// accepts; and when realtime/stream.py wants_stream sees a stream request.
// Where JS and Python differ (string length, trim(), UTF-8 decoding, float
// parsing), it follows Python. tests/deploy/test_edge.py compares it with the
// app on generated requests; change both sides together.
//
// Two things the edge cannot know, so a request for them is handed off and
// Fanout passes the app's error through: whether a well-formed board id names
// a board, and whether a Last-Event-ID (or lastEventId) can be parsed.

const ROOM_EVENTS = /^\/rooms\/([^/]+)\/events\/?$/;
const BOARD = /^\/boards\/([^/]+)\/?$/;

/**
 * @param {string} method
 * @param {URL} url the request's URL, as index.js parses it
 * @param {string | null} accept
 * @returns {boolean}
 */
export function handsOffToFanout(method, url, accept) {
  // The stream views allow GET, and so HEAD (chatdemo/http.py allow_methods).
  if (method !== "GET" && method !== "HEAD") return false;
  const path = djangoPath(url.pathname);
  const room = ROOM_EVENTS.exec(path);
  if (room) return isRoomName(room[1]);
  const board = BOARD.exec(path);
  if (board) return isId(board[1]) && (wantsEventStream(accept) || isRecovery(url));
  return false;
}

/**
 * Whether an Accept header lists text/event-stream, as Django reads it
 * (HttpRequest.accepted_types): a range whose quality rounds to 0 refuses the
 * type. EventSource sends exactly "text/event-stream".
 * @param {string | null} accept
 */
export function wantsEventStream(accept) {
  // Django splits on every "," (quoted or not) and skips blank ranges.
  return (accept ?? "").split(",").some((range) => {
    const [type, ...params] = range.split(";");
    return pyStrip(type).toLowerCase() === "text/event-stream" && !refusesByQuality(params);
  });
}

/**
 * Whether a range's parameters give it quality 0 (Django's MediaType.quality:
 * Python's float() of the last "q", rounded to 3 places; a value it cannot
 * read, or one outside 0..1, counts as 1).
 * @param {string[]} params
 */
function refusesByQuality(params) {
  let q = null;
  for (const param of params) {
    // Python's email parser lowercases a name only when a value follows it.
    const equals = param.indexOf("=");
    const name = equals < 0 ? pyStrip(param) : pyStrip(param.slice(0, equals)).toLowerCase();
    if (name === "q") q = equals < 0 ? "" : emailUnquote(pyStrip(param.slice(equals + 1)));
  }
  if (q === null) return false;
  const value = pyFloat(q);
  // round(value, 3) == 0 for exactly the doubles in [0, 0.0005): the double
  // nearest 0.0005 lies above it and rounds up. -0 counts as 0, NaN does not.
  return value !== null && value >= 0 && value < 0.0005;
}

// Python's float() of an ASCII string: underscores between digits, "inf", "nan".
const DIGITS = String.raw`\d(?:_?\d)*`;
const MANTISSA = String.raw`(?:${DIGITS}(?:\.(?:${DIGITS})?)?|\.${DIGITS})`;
const PY_FLOAT = new RegExp(
  String.raw`^[+-]?(?:${MANTISSA}(?:e[+-]?${DIGITS})?|inf(?:inity)?|nan)$`,
  "i",
);

/** @param {string} text @returns {number | null} */
function pyFloat(text) {
  const stripped = pyStrip(text);
  if (!PY_FLOAT.test(stripped)) return null;
  if (/nan$/i.test(stripped)) return NaN;
  if (/inf(?:inity)?$/i.test(stripped)) return stripped.startsWith("-") ? -Infinity : Infinity;
  return Number(stripped.replaceAll("_", ""));
}

/** Python's email.utils.unquote, which Django's header parser applies to each value. */
function emailUnquote(value) {
  if (value.length > 1) {
    if (value.startsWith('"') && value.endsWith('"')) {
      return value.slice(1, -1).replaceAll("\\\\", "\\").replaceAll('\\"', '"');
    }
    if (value.startsWith("<") && value.endsWith(">")) return value.slice(1, -1);
  }
  return value;
}

/**
 * Fanout's own recovery requests for a held stream (Grip-Link: ?link=next)
 * go straight to the origin backend, not through this Compute app. A client
 * that sends one anyway is served a stream by the app (wants_stream), so it
 * belongs to Fanout too. Django reads the last "link" value.
 * @param {URL} url
 */
function isRecovery(url) {
  return url.searchParams.getAll("link").at(-1) === "next";
}

/** Whether a path segment is a board id, as leaderboard/validation.py parse_id reads one. */
function isId(segment) {
  return /^[1-9][0-9]{0,18}$/.test(segment) && BigInt(segment) <= 2n ** 63n - 1n;
}

// Python's str.strip() whitespace (str.isspace()). Not JS's trim(): that
// strips U+FEFF, which Python keeps, and keeps U+001C-001F and U+0085.
const PY_SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_SPACE_AT_ENDS = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "g");
const PY_SPACE_AT_AN_END = new RegExp(`^[${PY_SPACE}]|[${PY_SPACE}]$`);

function pyStrip(text) {
  return text.replace(PY_SPACE_AT_ENDS, "");
}

// chat/validation.py _is_control: categories Cc and Cs, the bidi controls and
// the line and paragraph separators.
const CONTROL = /[\p{Cc}\p{Cs}\u202a-\u202e\u2066-\u2069\u2028\u2029]/u;
const ROOM_MAX_LENGTH = 100;

/** Whether chat/validation.py validate_room accepts a decoded room name. */
function isRoomName(segment) {
  const room = segment.normalize("NFC");
  return (
    room.length > 0 &&
    // Python counts code points; a JS string's length counts UTF-16 units.
    [...room].length <= ROOM_MAX_LENGTH &&
    // No space at either end (a blank name has one too).
    !PY_SPACE_AT_AN_END.test(room) &&
    !room.includes("/") &&
    room !== "." &&
    room !== ".." &&
    !CONTROL.test(room)
  );
}

/**
 * The path as Django's URL resolver sees it (request.path_info): percent
 * escapes decoded, including %2F (so "a%2Fb" is two segments and matches no
 * route), and bytes that are not UTF-8 put back as uppercase escapes
 * (django.utils.encoding.repercent_broken_unicode): "%ff" reaches the view as
 * the three characters "%FF". A "%" without two hex digits stays as it is.
 * @param {string} pathname
 */
function djangoPath(pathname) {
  const bytes = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < pathname.length; i++) {
    if (pathname[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(pathname.slice(i + 1, i + 3))) {
      bytes.push(parseInt(pathname.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      const codePoint = pathname.codePointAt(i);
      if (codePoint > 0xffff) i++;
      bytes.push(...encoder.encode(String.fromCodePoint(codePoint)));
    }
  }
  let path = "";
  // ignoreBOM: a TextDecoder drops a leading U+FEFF, which is part of a room name.
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  for (let i = 0; i < bytes.length; ) {
    const length = utf8SequenceLength(bytes, i);
    if (length === 0) {
      path += `%${bytes[i].toString(16).toUpperCase().padStart(2, "0")}`;
      i += 1;
    } else {
      path += decoder.decode(Uint8Array.from(bytes.slice(i, i + length)));
      i += length;
    }
  }
  return path;
}

/**
 * The length of the well-formed UTF-8 sequence at bytes[i] (Unicode table
 * 3-7, which Python's decoder follows: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0 if none starts there.
 * @param {number[]} bytes
 * @param {number} i
 */
function utf8SequenceLength(bytes, i) {
  const lead = bytes[i];
  if (lead < 0x80) return 1;
  // The second byte's range is narrower after E0 and F0 (no overlong forms),
  // ED (no surrogates) and F4 (nothing above U+10FFFF).
  let low = 0x80;
  let high = 0xbf;
  let continuations;
  if (lead >= 0xc2 && lead <= 0xdf) continuations = 1;
  else if (lead >= 0xe0 && lead <= 0xef) {
    continuations = 2;
    if (lead === 0xe0) low = 0xa0;
    if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    continuations = 3;
    if (lead === 0xf0) low = 0x90;
    if (lead === 0xf4) high = 0x8f;
  } else return 0;
  for (let k = 1; k <= continuations; k++) {
    const byte = bytes[i + k];
    const [min, max] = k === 1 ? [low, high] : [0x80, 0xbf];
    if (byte === undefined || byte < min || byte > max) return 0;
  }
  return continuations + 1;
}

/** Only hashed static files may be cached at the edge; the app's answers are live. */
export function cacheable(pathname) {
  return pathname.startsWith("/static/");
}
