from django.urls import path

from base.http import api_path
from leaderboard import views

app_name = "leaderboard"

# Ids are matched as strings and validated in the views, so that a malformed
# id gets the API's JSON 404 rather than Django's HTML one.
urlpatterns = [
    *api_path("boards/<str:board_id>/", views.board, name="board"),
    *api_path("boards/<str:board_id>/players/<str:player_id>/", views.player, name="player"),
    *api_path(
        "boards/<str:board_id>/players/<str:player_id>/score-add/",
        views.score_add,
        name="score-add",
    ),
    path("leaderboard/", views.home, name="home"),
    path("leaderboard/<str:board_id>/", views.page, name="page"),
]
