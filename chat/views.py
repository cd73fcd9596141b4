"""Chat pages and API. Views parse and validate, call one service or selector, and render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.csrf import csrf_exempt

from base.errors import InvalidField
from base.http import api_view, posted_fields
from chat import selectors, services
from chat.validation import (
    DEFAULT_ROOM,
    NICKNAME_MAX_LENGTH,
    ROOM_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    validate_message_id,
    validate_nickname,
    validate_room,
)
from idempotency.keys import idempotent
from ratelimit.limits import rate_limited
from realtime.channels import room_channel
from realtime.clients import client_address
from realtime.stream import stream


@csrf_exempt  # a public API: curl and the original demo's client post without a session
@api_view("GET", "POST")
@idempotent
@rate_limited("posts", client=client_address)
def messages(request: HttpRequest, room: str) -> HttpResponse:
    """GET: the 50 newest messages, newest first, or with ``?before=<id>`` the 50 before that
    one. POST: store one message (fields ``from``, ``text``)."""
    room = validate_room(room)
    if request.method == "POST":
        fields = posted_fields(request)
        message = services.message_post(
            room=room, author=fields.get("from"), text=fields.get("text")
        )
        return JsonResponse(selectors.message_payload(message))
    if "before" in request.GET:
        older = selectors.room_history_before(
            room=room, before=validate_message_id(request.GET["before"], field="before")
        )
        return JsonResponse({"messages": [selectors.message_payload(m) for m in older]})
    history = selectors.room_history(room=room)
    return JsonResponse(
        {
            "messages": [selectors.message_payload(m) for m in history.messages],
            "last-event-id": history.last_event_id,
        }
    )


@csrf_exempt  # so that a wrong method gets the API's JSON 405, not a CSRF page
@api_view("GET")
def events(request: HttpRequest, room: str) -> HttpResponse:
    """The room's ``message`` events as SSE (see realtime.stream)."""
    return stream(request, room_channel(validate_room(room)))


def join(request: HttpRequest) -> HttpResponse:
    """The join page: pick a nickname and a room."""
    nickname = request.session.get("nickname", "")
    room = request.GET.get("room", DEFAULT_ROOM)
    if request.method == "POST":
        nickname = request.POST.get("nickname", "")
        room = request.POST.get("room", "").strip() or DEFAULT_ROOM
    return _join_or_enter(request, nickname=nickname, room=room, entering=request.method == "POST")


def _join_or_enter(
    request: HttpRequest, *, nickname: str, room: str, entering: bool
) -> HttpResponse:
    """Enter ``room`` as ``nickname`` when asked to and both are valid; else the join page."""
    errors: dict[str, str] = {}
    if entering:
        try:
            nickname = validate_nickname(nickname, field="nickname")
        except InvalidField as error:
            errors[error.field] = error.message
        try:
            room = validate_room(room)
        except InvalidField as error:
            errors[error.field] = error.message
        if not errors:
            request.session["nickname"] = nickname
            return redirect("chat:room", room=room)
    return render(
        request,
        "chat/join.html",
        {
            "nickname": nickname,
            "room": room,
            "errors": errors,
            "nickname_max": NICKNAME_MAX_LENGTH,
            "room_max": ROOM_MAX_LENGTH,
        },
        status=400 if errors else 200,
    )


def original_room(request: HttpRequest, room: str) -> HttpResponse:
    """``/<room>?user=<nick>``: the original demo's shared link enters the room as that nickname.

    Without ``user`` it is the join page for the room, as in the original;
    but a path that names one of our own pages without its slash (``/chat``,
    ``/admin``) goes to that page, as Django's APPEND_SLASH would have done.
    """
    user = request.GET.get("user")
    if user is None:
        try:
            resolve(f"{request.path_info}/")
        except Resolver404:
            pass
        else:
            return redirect(f"{request.path}/")
    return _join_or_enter(request, nickname=user or "", room=room, entering=user is not None)


def room_page(request: HttpRequest, room: str) -> HttpResponse:
    """A room: its recent history, rendered here, older pages as it scrolls back (room.js),
    then live messages over SSE."""
    try:
        room = validate_room(room)
    except InvalidField:
        return redirect(reverse("chat:join"))
    nickname = request.session.get("nickname")
    if not nickname:
        return redirect(f"{reverse('chat:join')}?room={room}")
    history = selectors.room_history(room=room)
    return render(
        request,
        "chat/room.html",
        {
            "room": room,
            "nickname": nickname,
            "config": {
                # Oldest first; room.js renders them as it renders live ones.
                "messages": [selectors.message_payload(m) for m in reversed(history.messages)],
                "room": room,
                "nickname": nickname,
                "lastEventId": history.last_event_id,
                "messagesUrl": reverse("chat:messages", kwargs={"room": room}),
                "eventsUrl": reverse("chat:events", kwargs={"room": room}),
                "textMax": TEXT_MAX_LENGTH,
                # A page shorter than this ends at the room's first message.
                "historyPage": selectors.HISTORY_LIMIT,
            },
            "text_max": TEXT_MAX_LENGTH,
        },
    )
