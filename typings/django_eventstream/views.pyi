import threading
from typing import Any

from django.http import HttpRequest, HttpResponse

class Listener:
    channels: set[str]
    overflow: bool
    def wake_threadsafe(self) -> None: ...

class ListenerManager:
    lock: threading.Lock
    listeners_by_channel: dict[str, set[Listener]]

def get_listener_manager() -> ListenerManager: ...
def events(request: HttpRequest, **kwargs: Any) -> HttpResponse: ...
