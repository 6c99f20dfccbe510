"""Writes happen only in actions (STYLE.md, "One write, one place").

An AST scan of every module of the apps, except the actions themselves and the
migrations, for calls that write the database: model and queryset writes, related-manager
writes, guardian grants, and the admin's inherited saves. A view, form, consumer, admin
or command must call an action instead, which validates, sets the history user, writes
the audit entry and queues the live notice in one transaction.

Precise on purpose, so it can stay strict:
- `form.save(commit=False)` builds an unsaved object and is not a write (the caller
  then hands the object to an action; its own `.save()` would be flagged);
- `.update(` is flagged on querysets and managers (`X.objects...`, `qs.filter(...)`,
  a name like `queryset`), not on dicts and sets (`initial.update(...)`);
- `.set/.add/.remove/.clear(` are flagged on related managers of the apps' models
  (`note.readers.set(...)`), found from the model registry, not on a ContextVar or set.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.contrib import admin

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("audit", "teams", "casenotes", "discussions", "workspace")
DOMAIN_APPS = {"audit", "teams", "casenotes", "discussions", "auth", "guardian"}

ALWAYS_WRITES = {
    "delete", "create", "bulk_create", "bulk_update", "get_or_create", "update_or_create",
    "save_m2m",
}
RELATED_WRITES = {"set", "add", "remove", "clear"}
PERMISSION_WRITES = {"assign_perm", "remove_perm"}
ADMIN_SUPER_WRITES = {"save_model", "delete_model", "save_related", "save_formset",
                      "delete_queryset"}
QUERYSET_METHODS = {
    "all", "filter", "exclude", "select_for_update", "select_related", "prefetch_related",
    "order_by", "annotate", "alias", "values", "values_list", "only", "defer", "using",
    "distinct", "none", "active",
}

#: (path relative to the repository, the call as written) -> why it is not a stray write.
#: Every entry must say why; an entry that no longer matches anything fails the suite.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Write:
    path: str
    line: int
    call: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.call}(...) — {self.why}"


def related_manager_names() -> frozenset[str]:
    """Names under which the apps' models expose related managers (forward many-to-many
    fields, reverse foreign keys and their `*_set` defaults, history managers)."""
    names = {"history"}
    for model in apps.get_models():
        if model._meta.app_label not in DOMAIN_APPS:
            continue
        for field in model._meta.get_fields(include_hidden=False):
            if not (field.many_to_many or field.one_to_many):
                continue
            if field.auto_created and not field.concrete:
                names.add(field.get_accessor_name())
            else:
                names.add(field.name)
    return frozenset(n for n in names if n and not n.endswith("+"))


def _is_super_call(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "super")


def _looks_like_queryset(node, related: frozenset[str]) -> bool:
    while True:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in QUERYSET_METHODS:
                return True
            node = func
        elif isinstance(node, ast.Attribute):
            if node.attr == "objects" or node.attr in related or node.attr.endswith("_set"):
                return True
            node = node.value
        elif isinstance(node, ast.Name):
            name = node.id.lower()
            return name in {"qs", "queryset"} or name.endswith(("_qs", "_queryset"))
        else:
            return False


def _commit_false(call: ast.Call) -> bool:
    return any(kw.arg == "commit" and isinstance(kw.value, ast.Constant)
               and kw.value.value is False for kw in call.keywords)


def _why(call: ast.Call, related: frozenset[str]) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return "guardian permission write" if func.id in PERMISSION_WRITES else None
    if not isinstance(func, ast.Attribute):
        return None
    name, receiver = func.attr, func.value
    if name in PERMISSION_WRITES:
        return "guardian permission write"
    if name == "save":
        return None if _commit_false(call) else "model save"
    if name in ALWAYS_WRITES:
        return f"database write ({name})"
    if name == "update" and _looks_like_queryset(receiver, related):
        return "queryset update (no history, no audit)"
    if name in RELATED_WRITES and isinstance(receiver, ast.Attribute) and receiver.attr in related:
        return f"related-manager write ({receiver.attr}.{name})"
    if name in ADMIN_SUPER_WRITES and _is_super_call(receiver):
        return f"the admin's own {name}, which writes without an action"
    return None


def scan_source(source: str, path: str, related: frozenset[str] | None = None) -> list[Write]:
    related = related_manager_names() if related is None else related
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Call):
            why = _why(node, related)
            if why:
                found.append(Write(path, node.lineno, ast.unparse(node.func), why))
    return sorted(found, key=lambda w: (w.path, w.line))


def _is_actions_module(relative: Path) -> bool:
    """`actions.py`, or any module of an `actions` package."""
    return relative.name == "actions.py" or "actions" in relative.parent.parts


def scanned_files() -> list[Path]:
    files = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or _is_actions_module(relative):
                continue
            files.append(path)
    return files


def scan_tree() -> list[Write]:
    related = related_manager_names()
    found = []
    for path in scanned_files():
        found += scan_source(path.read_text(), str(path.relative_to(ROOT)), related)
    return found


# --- the rule, on the code -------------------------------------------------------------

def test_no_module_but_the_actions_writes_the_database():
    stray = [w for w in scan_tree() if (w.path, w.call) not in ALLOWED]
    assert not stray, "write outside an action:\n" + "\n".join(map(str, stray))


def test_every_allow_list_entry_is_still_needed_and_explained():
    found = {(w.path, w.call) for w in scan_tree()}
    for key, reason in ALLOWED.items():
        assert key in found, f"stale allow-list entry {key}"
        assert reason.strip(), f"allow-list entry {key} gives no reason"


def test_the_scan_covers_the_apps_and_skips_actions_and_migrations():
    files = {str(p.relative_to(ROOT)) for p in scanned_files()}
    assert {"casenotes/permissions.py", "teams/selectors.py", "audit/receivers.py",
            "workspace/live.py"} <= files
    assert not any(f.endswith("actions.py") or "/actions/" in f or "/migrations/" in f
                   for f in files)


def test_related_manager_names_come_from_the_models():
    names = related_manager_names()
    assert {"people", "readers", "notes", "memberships", "addenda"} <= names


# --- the scanner, on planted code --------------------------------------------------------

PLANTED = '''
from guardian.shortcuts import assign_perm, remove_perm
from casenotes.models import Case, CaseNote


def sneaky_view(request, note, form, case_id):
    Case.objects.create(reference="X")                        # 7  flagged
    note.body = "changed"
    note.save()                                               # 9  flagged
    note.save(update_fields=["body"])                         # 10 flagged
    CaseNote.objects.filter(case_id=case_id).update(body="")  # 11 flagged
    note.readers.set([request.user])                          # 12 flagged
    note.people.add(1)                                        # 13 flagged
    assign_perm("view_case", request.user, note.case)         # 14 flagged
    remove_perm("view_case", request.user, note.case)         # 15 flagged
    note.addenda.all().delete()                               # 16 flagged
    CaseNote.objects.bulk_create([])                          # 17 flagged
    Case.objects.get_or_create(reference="Y")                 # 18 flagged
    Case.objects.update_or_create(reference="Z")              # 19 flagged
    form.save_m2m()                                           # 20 flagged
    queryset.update(state="final")                            # 21 flagged
    CaseNote.history.filter(id=1).update(history_user=None)   # 22 flagged
    obj = form.save(commit=False)                             # 23 fine: nothing written
    initial = {}
    initial.update(body="x")                                  # 25 fine: a dict
    seen = set()
    seen.add(1)                                               # 27 fine: a set
    _current.set(request)                                     # 28 fine: a ContextVar
    return obj


class NoteAdmin:
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)        # 34 flagged
'''


def test_scanner_catches_every_planted_write_and_nothing_else():
    found = scan_source(PLANTED, "planted.py")
    assert [w.line for w in found] == [7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                       22, 34]
    by_line = {w.line: w for w in found}
    assert by_line[12].why == "related-manager write (readers.set)"
    assert by_line[14].why == "guardian permission write"
    assert by_line[11].why.startswith("queryset update")
    assert str(by_line[9]) == "planted.py:9: note.save(...) — model save"


def test_scanner_reports_a_planted_write_in_the_tree_scan(tmp_path, monkeypatch):
    app = tmp_path / "casenotes"
    app.mkdir()
    (app / "views.py").write_text("def v(note):\n    note.readers.clear()\n")
    (app / "actions.py").write_text("def do_it(note):\n    note.save()\n")  # allowed here
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    monkeypatch.setattr(f"{__name__}.SCANNED", ("casenotes",))
    assert [(w.path, w.line, w.call) for w in scan_tree()] == [
        ("casenotes/views.py", 2, "note.readers.clear")]


# --- what an AST scan cannot see: the admin's inherited save ------------------------------

THIRD_PARTY = ("django.", "simple_history.", "guardian.")


def _project_defines(model_admin, name: str) -> bool:
    return any(name in klass.__dict__ and not klass.__module__.startswith(THIRD_PARTY)
               for klass in type(model_admin).__mro__)


def _inherited_writers() -> list[str]:
    """Admin classes for the apps' models (and accounts) that allow adding or changing
    but do not override save_model, so Django's own save_model writes the row directly:
    no action, no audit entry."""
    found = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        if model._meta.app_label not in {"audit", "teams", "casenotes"} and label != "auth.User":
            continue
        # Only the project's own overrides are called: they take no notice of the request.
        read_only = all(
            _project_defines(model_admin, name) and getattr(model_admin, name)(None) is False
            for name in ("has_add_permission", "has_change_permission")
        )
        if not read_only and not _project_defines(model_admin, "save_model"):
            found.append(label)
    return sorted(found)


def test_writable_admins_save_through_an_action():
    registered = {m._meta.label for m in admin.site._registry}
    assert {"teams.Agency", "teams.Team", "teams.Membership", "auth.User"} <= registered
    assert _inherited_writers() == []
