class Event:
    channel: str
    type: str
    data: str
    id: int | None
    def __init__(self, channel: str, type: str, data: str, id: int | None = ...) -> None: ...
