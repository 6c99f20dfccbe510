"""Fixed-shape ORM queries compiled once, then run with new values.

Django builds and compiles a queryset to SQL on every call, and for the permission
policy's small queries that costs more than the database takes to answer them: the
three queries behind one case access take about 4 ms built and compiled each time,
and about 1 ms run from their SQL. Those queries are asked by every page, socket
message and write, so they are `Prepared`:

- each is still written as a queryset (its `build` function), so the ORM alone says
  what it asks;
- it is compiled once per thread, database and shape (the length of each list of
  ids) with stand-in values, and each stand-in's places among the SQL's parameters
  are found;
- a call runs that SQL with the real values, adapted as Django adapts them for their
  field, and its rows go through the compiler's own converters.

So a call runs exactly what Django would compile for those values
(tests/workspace/test_prepared.py compares the two for random values on both
databases). A shape whose list Django finds empty (`pk__in=[]`) is answered with no
rows and no query, as Django answers it.
"""

import datetime
import threading
from collections.abc import Callable

from django.core.exceptions import EmptyResultSet
from django.db import connections, models
from django.db.models import QuerySet

#: The kinds of value a prepared query takes, each as the field that adapts it.
Int = models.BigIntegerField()
Date = models.DateField()
DateTime = models.DateTimeField()
Ints = "ints"  # a list of ids; its length is part of the query's shape

#: Longer lists of ids run the queryset itself (each length would be compiled and kept).
LIST_LIMIT = 16


def _stand_ins(kinds: dict, shape: dict) -> dict:
    """Values no real query passes, distinct from each other: negative ids, dates and
    times in the 12th century."""
    values, n = {}, 0
    for name, kind in kinds.items():
        if kind is Ints:
            values[name] = [-(10**12) - n - i for i in range(shape[name])]
            n += shape[name]
        elif kind is Int:
            values[name] = -(10**12) - n
            n += 1
        elif kind is Date:
            values[name] = datetime.date(1100 + n, 1, 1)
            n += 1
        else:
            values[name] = datetime.datetime(1100 + n, 1, 1, 11, 11, 11, 111111,
                                             tzinfo=datetime.UTC)
            n += 1
    return values


class _Compiled:
    """One shape's SQL, where each value goes among its parameters, and the compiler
    whose converters read its rows back (on this thread's connection)."""

    def __init__(self, queryset: QuerySet, alias: str, kinds: dict, stand_ins: dict):
        connection = connections[alias]
        self.compiler = queryset.query.get_compiler(using=alias)
        self.sql, params = self.compiler.as_sql()
        self.params = list(params)
        self.converters = self.compiler.get_converters(
            [s[0] for s in self.compiler.select[: self.compiler.col_count]])
        where: dict[object, tuple[str, int | None]] = {}
        for name, kind in kinds.items():
            if kind is Ints:
                for i, value in enumerate(stand_ins[name]):
                    where[value] = (name, i)
            else:
                where[kind.get_db_prep_value(stand_ins[name], connection)] = (name, None)
        self.slots: list[tuple[int, str, int | None, type | None]] = []
        found = set()
        for position, param in enumerate(self.params):
            try:
                slot = where.get(param)
            except TypeError:  # an unhashable constant: never a stand-in
                slot = None
            if slot is not None:
                # An id goes in as the type Django adapted its stand-in to (a plain int,
                # or psycopg's Int4/Int8 where the lookup's field asks for one).
                cast = type(param) if kinds[slot[0]] is Ints or kinds[slot[0]] is Int else None
                self.slots.append((position, *slot, cast))
                found.add(slot)
        if found != set(where.values()):
            raise ValueError(f"a prepared query's values are not all among its parameters: "
                             f"{sorted(set(where.values()) - found)}")


class Prepared:
    """A queryset of fixed shape, `build(**values)`, whose values are of `kinds`
    (name: Int, Date, DateTime or Ints). `rows(**values)` runs it and returns its
    rows as the queryset would (build a `values_list` queryset)."""

    def __init__(self, build: Callable[..., QuerySet], **kinds):
        self.build = build
        self.kinds = kinds
        self._local = threading.local()

    def _shape(self, values: dict) -> tuple:
        return tuple(len(values[name]) for name, kind in self.kinds.items() if kind is Ints)

    def _compiled(self, alias: str, shape: tuple) -> _Compiled | None:
        cache = self._local.__dict__.setdefault(alias, {})
        if shape not in cache:
            lengths = dict(zip((n for n, k in self.kinds.items() if k is Ints), shape, strict=True))
            stand_ins = _stand_ins(self.kinds, lengths)
            try:
                cache[shape] = _Compiled(self.build(**stand_ins), alias, self.kinds, stand_ins)
            except EmptyResultSet:
                cache[shape] = None
        return cache[shape]

    def _normalised(self, values: dict) -> dict:
        # As Django's `__in` does: each id once, in the order given.
        return {name: list(dict.fromkeys(value)) if self.kinds[name] is Ints else value
                for name, value in values.items()}

    def _prepares(self, values: dict) -> bool:
        """Lists longer than LIST_LIMIT are not prepared: each length would be a shape."""
        return all(len(values[name]) <= LIST_LIMIT
                   for name, kind in self.kinds.items() if kind is Ints)

    def _bound(self, alias: str, values: dict) -> tuple[_Compiled, list] | None:
        """The compiled shape for (normalised) `values` and its parameters (None: no
        query)."""
        compiled = self._compiled(alias, self._shape(values))
        if compiled is None:
            return None
        connection = connections[alias]
        params = list(compiled.params)
        for position, name, index, cast in compiled.slots:
            if cast is not None:
                value = values[name] if index is None else values[name][index]
                params[position] = cast(int(value))
            else:
                params[position] = self.kinds[name].get_db_prep_value(values[name], connection)
        return compiled, params

    def sql_with_params(self, alias: str = "default", **values) -> tuple[str, list] | None:
        """The SQL and parameters a call with `values` runs (None: no query)."""
        values = self._normalised(values)
        if not self._prepares(values):
            try:
                sql, params = self.build(**values).query.get_compiler(using=alias).as_sql()
            except EmptyResultSet:
                return None
            return sql, list(params)
        bound = self._bound(alias, values)
        return None if bound is None else (bound[0].sql, bound[1])

    def rows(self, alias: str = "default", **values) -> list[tuple]:
        """The queryset's rows for `values` (tuples, as `values_list` gives them)."""
        values = self._normalised(values)
        if not self._prepares(values):
            return [tuple(row) for row in self.build(**values).using(alias)]
        bound = self._bound(alias, values)
        if bound is None:
            return []
        compiled, params = bound
        with connections[alias].cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        return [tuple(row) for row in rows]
