from typing import Any

def make_id(ids: dict[str, Any]) -> str: ...
def parse_last_event_id(s: str) -> dict[str, str]: ...
def sse_encode_event(
    event_type: str,
    data: Any,
    event_id: str | None = ...,
    escape: bool = ...,
    json_encode: bool = ...,
) -> str: ...
