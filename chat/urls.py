from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("rooms/<str:room>/messages/", views.messages, name="messages"),
    path("rooms/<str:room>/events/", views.events, name="events"),
    path("chat/", views.join, name="join"),
    path("chat/<str:room>/", views.room_page, name="room"),
]
