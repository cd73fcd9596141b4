"""The bare-Pushpin baseline's origin: it answers every request with a GRIP hold.

    python -m bench.origin --port 8123

``GET /bare/<channel>/`` gets ``Grip-Hold: stream`` on ``<channel>`` and a
``stream-open`` event, nothing else: no database, no framework, no signature
check. Messages for the baseline are published straight to Pushpin's publish
API, so this process is idle once the subscribers are connected. What Pushpin
does with that is the limit the app is measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re

_PATH = re.compile(rb"^[A-Z]+ /bare/([A-Za-z0-9_-]{1,64})/")

BODY = b"event: stream-open\ndata:\n\n"


def hold_response(channel: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/event-stream\r\n"
        b"Grip-Hold: stream\r\n"
        b"Grip-Channel: " + channel + b"\r\n"
        b"Grip-Keep-Alive: event: keep-alive\\ndata:\\n\\n; format=cstring; timeout=20\r\n"
        b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
    )


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            match = _PATH.match(head)
            writer.write(hold_response(match.group(1)) if match else NOT_FOUND)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve_connection, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().port))
