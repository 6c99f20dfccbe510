from django.urls import path

from discussions import views

app_name = "discussions"

urlpatterns = [
    path("discussions/new/<int:team_id>/", views.schedule, name="schedule"),
    path("discussions/<int:discussion_id>/", views.room, name="room"),
    path("discussions/<int:discussion_id>/history/", views.history, name="history"),
    path("discussions/<int:discussion_id>/start/", views.start, name="start"),
    path("discussions/<int:discussion_id>/cancel/", views.cancel, name="cancel"),
    path("discussions/<int:discussion_id>/move/", views.move, name="move"),
    path("discussions/<int:discussion_id>/agenda/", views.agenda, name="agenda"),
    path("discussions/<int:discussion_id>/agenda/add/", views.agenda_add, name="agenda_add"),
    path("discussions/<int:discussion_id>/sign-off/", views.sign_off, name="sign_off"),
    path("discussions/<int:discussion_id>/sections/<int:section_id>/", views.section_save,
         name="section_save"),
    path("discussions/<int:discussion_id>/kept/<int:kept_id>/", views.kept_resolve,
         name="kept_resolve"),
    path("discussions/<int:discussion_id>/items/<int:item_id>/actions/", views.action_add,
         name="action_add"),
    path("discussions/<int:discussion_id>/actions/<int:action_id>/remove/", views.action_remove,
         name="action_remove"),
    path("actions/", views.my_actions, name="my_actions"),
    path("actions/<int:action_id>/done/", views.action_complete, name="action_complete"),
]
