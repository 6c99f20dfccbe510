from django.urls import path

from casenotes.views import access, notes

app_name = "casenotes"

urlpatterns = [
    path("", notes.caseload, name="caseload"),
    path("search/", access.search, name="search"),
    path("transfers/", access.transfer_list, name="transfer_list"),
    path("transfers/<int:transfer_id>/", access.transfer_decide, name="transfer_decide"),
    path("transfers/<int:transfer_id>/withdraw/", access.transfer_withdraw,
         name="transfer_withdraw"),
    path("cases/new/<int:team_id>/", access.case_create, name="case_create"),
    path("cases/<int:case_id>/", notes.case_detail, name="case_detail"),
    path("cases/<int:case_id>/export.csv", access.case_export, name="case_export"),
    path("cases/<int:case_id>/history/", access.case_history, name="case_history"),
    path("cases/<int:case_id>/chronology/", notes.chronology, name="chronology"),
    path("cases/<int:case_id>/chronology.csv", access.chronology_export,
         name="chronology_export"),
    path("cases/<int:case_id>/access/", access.case_access, name="case_access"),
    path("cases/<int:case_id>/access/lead/", access.lead_allocate, name="lead_allocate"),
    path("cases/<int:case_id>/access/keyworkers/", access.keyworker_add, name="keyworker_add"),
    path("cases/<int:case_id>/access/keyworkers/<int:grant_id>/remove/", access.keyworker_remove,
         name="keyworker_remove"),
    path("cases/<int:case_id>/access/emergency/<int:grant_id>/end/", access.break_glass_end,
         name="break_glass_end"),
    path("cases/<int:case_id>/transfer/", access.transfer_request, name="transfer_request"),
    path("cases/<int:case_id>/manage/", access.case_manage, name="case_manage"),
    path("cases/<int:case_id>/emergency-access/", access.break_glass, name="break_glass"),
    path("cases/<int:case_id>/people/new/", access.person_add, name="person_add"),
    path("cases/<int:case_id>/people/<int:person_id>/", access.person_edit, name="person_edit"),
    path("cases/<int:case_id>/people/<int:person_id>/specialist-agency/",
         access.person_specialist, name="person_specialist"),
    path("cases/<int:case_id>/notes/new/", notes.note_create, name="note_create"),
    path("cases/<int:case_id>/notes/<int:note_id>/", notes.note_detail, name="note_detail"),
    path("cases/<int:case_id>/notes/<int:note_id>/edit/", notes.note_edit, name="note_edit"),
    path("cases/<int:case_id>/notes/<int:note_id>/addenda/", notes.addendum_create,
         name="addendum_create"),
    path("cases/<int:case_id>/notes/<int:note_id>/history/", access.note_history,
         name="note_history"),
    path("cases/<int:case_id>/notes/<int:note_id>/readers/", access.note_readers,
         name="note_readers"),
]
