from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("emergency-access/", views.break_glass_queue, name="break_glass_queue"),
]
