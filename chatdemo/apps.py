from django.apps import AppConfig


class ChatdemoConfig(AppConfig):
    name = "chatdemo"
    verbose_name = "Chat demo project"
