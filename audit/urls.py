from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.log_search, name="log_search"),
    path("alerts/", views.alerts, name="alerts"),
    path("subject-access/", views.subject_access, name="subject_access"),
    path("emergency-access/", views.break_glass_queue, name="break_glass_queue"),
    path("emergency-access/<int:grant_id>/", views.break_glass_review, name="break_glass_review"),
    path("reports/cases/<int:case_id>/", views.case_report, name="case_report"),
    path("reports/users/<int:user_id>/", views.user_report, name="user_report"),
]
