"""Every write to cases, people, notes, addenda and case access.

Each action validates (raising ValidationError with a message a practitioner can
act on), writes inside one transaction, sets the history user, writes its audit
entry, and queues its live notice for after commit. Views, forms, consumers and
commands all call these; nothing else writes these models.

- `notes`: cases, people, notes, addenda, live-room presence;
- `access`: allocation, keyworkers, transfers, sealed shares, break-glass;
- `plan`: the family's plan.
"""

from casenotes.actions.access import (  # noqa: F401
    do_add_keyworker,
    do_allocate_lead,
    do_change_legal_basis,
    do_decide_transfer,
    do_end_break_glass,
    do_open_break_glass,
    do_remove_keyworker,
    do_request_transfer,
    do_review_break_glass,
    do_share_sealed_note,
    do_withdraw_transfer,
)
from casenotes.actions.notes import (  # noqa: F401
    AlreadyAdded,
    PersonChanged,
    StaleVersion,
    do_add_addendum,
    do_add_person,
    do_close_case,
    do_create_case,
    do_create_note,
    do_finalise_note,
    do_join_room,
    do_leave_room,
    do_mark_case_seen,
    do_set_specialist_agency,
    do_touch_presence,
    do_update_draft,
    do_update_person,
)
from casenotes.actions.plan import PlanChanged, do_update_plan  # noqa: F401
