"""Information-governance pages (IG officers only)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from casenotes import selectors
from casenotes.permissions import Action, NotFound, policy


@login_required
def break_glass_queue(request):
    if not policy.can(request.user, Action.REVIEW_BREAK_GLASS):
        policy.record_denied(request.user, "break_glass", "", None, Action.REVIEW_BREAK_GLASS)
        raise NotFound()
    try:
        page = int(request.GET.get("page", 1))
    except ValueError:
        page = 1
    return render(request, "audit/break_glass_queue.html", {
        **selectors.break_glass_queue(request.user, page=page), "nav": "ig"})
