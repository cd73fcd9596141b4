from django.urls import path

from base.http import api_path
from chat import views

app_name = "chat"

urlpatterns = [
    *api_path("rooms/<str:room>/messages/", views.messages, name="messages"),
    *api_path("rooms/<str:room>/events/", views.events, name="events"),
    path("chat/", views.join, name="join"),
    path("chat/<str:room>/", views.room_page, name="room"),
    # The original demo's page links: /<room>?user=<nick>. One path segment,
    # so it never shadows a path with a slash in it; see the view for the rest.
    path("<str:room>", views.original_room, name="original-room"),
]
