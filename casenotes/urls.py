from django.urls import path

from casenotes import views

app_name = "casenotes"

urlpatterns = [
    path("", views.caseload, name="caseload"),
    path("cases/<int:case_id>/", views.case_detail, name="case_detail"),
    path("cases/<int:case_id>/notes/new/", views.note_create, name="note_create"),
    path("cases/<int:case_id>/notes/<int:note_id>/", views.note_detail, name="note_detail"),
    path("cases/<int:case_id>/notes/<int:note_id>/edit/", views.note_edit, name="note_edit"),
    path("cases/<int:case_id>/notes/<int:note_id>/addenda/", views.addendum_create,
         name="addendum_create"),
]
