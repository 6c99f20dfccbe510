"""WebSocket routes: the live case room and the discussion room; any other path is
refused alike."""

from django.urls import re_path

from casenotes.consumers import CaseRoomConsumer, RefuseConnection
from discussions.consumers import DiscussionRoomConsumer

websocket_urlpatterns = [
    re_path(r"^ws/cases/(?P<case_id>[0-9]{1,18})/$", CaseRoomConsumer.as_asgi()),
    re_path(r"^ws/discussions/(?P<discussion_id>[0-9]{1,18})/$", DiscussionRoomConsumer.as_asgi()),
    re_path(r"", RefuseConnection.as_asgi()),
]
