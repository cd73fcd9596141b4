from django.contrib import admin
from django.urls import include, path

from chatdemo import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("chat.urls")),
    path("", include("leaderboard.urls")),
    path("admin/", admin.site.urls),
]
