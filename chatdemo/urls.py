from django.contrib import admin
from django.urls import include, path

from chatdemo import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("healthz/live", views.healthz_live, name="healthz-live"),
    path("healthz/ready", views.healthz_ready, name="healthz-ready"),
    path("", include("chat.urls")),
    path("", include("leaderboard.urls")),
    path("admin/", admin.site.urls),
]
