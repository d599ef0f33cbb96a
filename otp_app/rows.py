"""The rows the hot path reads (a session with its account, an account by email at login, an
account's sessions) and writes (a wrong code's count, last_login, a passkey's use, a security
event, a session's key moved), each with one plain SQL statement.

Django compiles each queryset to SQL anew, which costs several times what these indexed lookups
take the database; the statements here are built once per model, conditions and database, and
values are prepared and converted by the same methods the ORM uses.
"""

import contextlib
import functools
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connections, models, router, transaction


@dataclass(frozen=True)
class _Part:
    model: type[models.Model]
    attnames: list[str]
    pk_position: int
    converters: list  # (position, Col expression, the ORM's converters) of each column that has any


@dataclass(frozen=True)
class _Select:
    sql: str
    parts: list[_Part]  # the model read, then the related one when joined
    conditions: list  # the fields compared, to prepare the values


_OPERATORS = {"=", ">"}


def _where(model, connection, conditions, prefix: str = "") -> tuple[str, list]:
    quote = connection.ops.quote_name
    compared = [model._meta.get_field(name) for name, _ in conditions]
    if any(operator not in _OPERATORS for _, operator in conditions):
        raise ValueError(f"rows.py compares with {sorted(_OPERATORS)} only")
    where = " AND ".join(
        f"{prefix}{quote(field.column)} {operator} %s"
        for field, (_, operator) in zip(compared, conditions, strict=True)
    )
    return where, compared


def _prepared(fields, values, connection) -> list | None:
    try:
        return [
            field.get_db_prep_value(value, connection, prepared=False)
            for field, value in zip(fields, values, strict=True)
        ]
    except (ValidationError, ValueError):  # a TypeError is a bug of the caller: it raises
        return None  # a value no row can hold (a malformed id): no row matches


def _part(model, connection, table_alias: str, only: tuple[str, ...] | None = None) -> tuple[list[str], _Part]:
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    if only is not None:  # the rest stays deferred, read if ever asked for
        fields = [field for field in fields if field.primary_key or field.attname in only]
    selected = [f"{table_alias}.{quote(field.column)}" for field in fields]
    attnames = [field.attname for field in fields]
    converting = _converters(connection, fields, table_alias)
    return selected, _Part(model, attnames, attnames.index(model._meta.pk.attname), converting)


def _converters(connection, fields, table_alias: str) -> list:
    """(position, Col expression, the ORM's converters) of each field whose value needs any."""
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(table_alias)
        functions = tuple(connection.ops.get_db_converters(column) + column.get_db_converters(connection))
        if functions:
            converters.append((position, column, functions))
    return converters


def _converted(values: list, converters: list, connection) -> list:
    """A row's values as the ORM gives them (`values` is changed in place)."""
    for position, column, functions in converters:
        for function in functions:
            values[position] = function(values[position], column, connection)
    return values


# Keyed by the connection object: each thread has its own, and the converters are its methods.
@functools.lru_cache(maxsize=64)
def _select(
    model, connection, conditions: tuple[tuple[str, str], ...], joined: str | None, only: tuple[str, ...] | None = None
) -> _Select:
    quote = connection.ops.quote_name
    selected, part = _part(model, connection, "t0", only)
    parts = [part]
    source = f"{quote(model._meta.db_table)} t0"
    if joined is not None:
        foreign_key = model._meta.get_field(joined)
        related = foreign_key.related_model
        related_selected, related_part = _part(related, connection, "t1")
        selected += related_selected
        parts.append(related_part)
        source += (
            f" LEFT JOIN {quote(related._meta.db_table)} t1"
            f" ON t1.{quote(related._meta.pk.column)} = t0.{quote(foreign_key.column)}"
        )
    where, compared = _where(model, connection, conditions, prefix="t0.")
    return _Select(f"SELECT {', '.join(selected)} FROM {source} WHERE {where}", parts, compared)


def first(model: type[models.Model], *conditions: tuple[str, str, object], only: tuple[str, ...] | None = None):
    """The row of `model` matching every (field, operator, value) condition, or None: what
    `model.objects.filter(...).first()` gives when the conditions select at most one row
    (a primary or unique key), without compiling a queryset. `only`: as for `first_with`."""
    return _first(model, conditions, joined=None, only=only)[0]


def first_with(
    model: type[models.Model], joined: str, *conditions: tuple[str, str, object], only: tuple[str, ...] | None = None
):
    """Like `first`, with the row its foreign key `joined` points to read in the same statement:
    (row or None, related row or None). `only`: the columns of `model`'s row to read (its
    primary key always), the others deferred."""
    return _first(model, conditions, joined=joined, only=only)


def _first(model, conditions, *, joined, only=None):
    alias = router.db_for_read(model)
    connection = connections[alias]
    select = _select(model, connection, tuple((name, operator) for name, operator, _ in conditions), joined, only)
    params = _prepared(select.conditions, [value for _, _, value in conditions], connection)
    if params is None:
        return None, None
    with connection.cursor() as cursor:
        cursor.execute(select.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None, None
    found, offset = [], 0
    for part in select.parts:
        values = _converted(list(row[offset : offset + len(part.attnames)]), part.converters, connection)
        offset += len(part.attnames)
        read = values[part.pk_position] is not None  # a LEFT JOIN that found no row gives NULLs
        found.append(part.model.from_db(alias, part.attnames, values) if read else None)
    return found[0], (found[1] if joined is not None else None)


@functools.lru_cache(maxsize=64)
def _values(model, connection, names: tuple[str, ...], conditions: tuple[tuple[str, str], ...], order_by: str):
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    converters = _converters(connection, fields, "t0")
    where, compared = _where(model, connection, conditions, prefix="t0.")
    descending = order_by.startswith("-")
    order = f"t0.{quote(model._meta.get_field(order_by.lstrip('-')).column)}{' DESC' if descending else ''}"
    selected = ", ".join(f"t0.{quote(field.column)}" for field in fields)
    sql = f"SELECT {selected} FROM {quote(model._meta.db_table)} t0 WHERE {where} ORDER BY {order}"
    return sql, compared, converters


def values(model: type[models.Model], names: tuple[str, ...], *conditions: tuple[str, str, object], order_by: str):
    """`model.objects.filter(...).order_by(order_by).values_list(*names)` as a list of tuples,
    for the few columns a listing shows, without compiling a queryset."""
    alias = router.db_for_read(model)
    connection = connections[alias]
    sql, compared, converters = _values(
        model, connection, names, tuple((name, operator) for name, operator, _ in conditions), order_by
    )
    params = _prepared(compared, [value for _, _, value in conditions], connection)
    if params is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return [tuple(_converted(list(row), converters, connection)) for row in found]


@functools.lru_cache(maxsize=64)
def _update(model, connection, names: tuple[str, ...], conditions: tuple[tuple[str, str], ...]):
    quote = connection.ops.quote_name
    assigned = [model._meta.get_field(name) for name in names]
    where, compared = _where(model, connection, conditions)
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in assigned)
    return f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {where}", assigned + compared


def update(model: type[models.Model], values: dict, *conditions: tuple[str, str, object]) -> int:
    """`model.objects.filter(...).update(**values)` for plain values and comparisons: the number
    of rows changed, so that a conditional UPDATE's row count can decide a race."""
    alias = router.db_for_write(model)
    connection = connections[alias]
    sql, fields = _update(model, connection, tuple(values), tuple((name, operator) for name, operator, _ in conditions))
    params = _prepared(fields, [*values.values(), *(value for _, _, value in conditions)], connection)
    if params is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def savepoint(connection, alias: str):
    # Inside a transaction a failed statement must not abort it (PostgreSQL): give it a savepoint.
    # Outside one it is a statement of its own, and needs no BEGIN and COMMIT around it.
    return transaction.atomic(using=alias) if connection.in_atomic_block else contextlib.nullcontext()


@functools.lru_cache(maxsize=64)
def _insert(model, connection, names: tuple[str, ...], count: int = 1):
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(quote(field.column) for field in fields)
    row = f"({', '.join(['%s'] * len(fields))})"
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {', '.join([row] * count)}", fields


def add(*instances: models.Model) -> None:
    """`instance.save()` of new rows of one model as one plain INSERT, reading automatic primary
    keys back (in the order of `instances`: a database numbers the rows of one INSERT in turn).
    Sends no pre_save/post_save signal (the audit trail has signals of its own)."""
    model = type(instances[0])
    meta = model._meta
    alias = router.db_for_write(model)
    connection = connections[alias]
    auto_pk = meta.auto_field is not None and instances[0].pk is None
    if any(type(instance) is not model or (instance.pk is None) != auto_pk for instance in instances):
        raise TypeError("rows.add: new rows of one model, all with their primary key or all without")
    returning = auto_pk and connection.features.can_return_columns_from_insert
    if auto_pk and not returning and len(instances) > 1:  # only the last id could be read back
        with transaction.atomic(using=alias):  # all the rows or none
            for instance in instances:
                add(instance)
        return
    fields = [field for field in meta.concrete_fields if not (auto_pk and field is meta.auto_field)]
    sql, _ = _insert(model, connection, tuple(field.name for field in fields), len(instances))
    params = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for instance in instances for field in fields
    ]
    if returning:
        sql += " " + connection.ops.return_insert_columns([meta.pk])[0]
    with savepoint(connection, alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            for instance, (pk,) in zip(instances, sorted(cursor.fetchall()), strict=True):
                instance.pk = pk
        elif auto_pk:
            instances[0].pk = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    for instance in instances:
        instance._state.adding, instance._state.db = False, alias
