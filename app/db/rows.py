"""Mapped objects from Core rows: the per-request hot path reads with Core and still hands out the model types.

Loading through the ORM (``select(User)`` in a ``Session``) builds the statement's ORM compile state, an
identity map and a unit of work for every request; the authentication middleware measured a quarter of a
dashboard request in it. :func:`detached` builds the same object a ``Session`` would have left behind after
``expire_on_commit=False`` and close: detached, with its identity key, every selected attribute loaded and
unmodified, deferred ones unloaded (reading them raises, as before). Code that changes it must load a fresh
copy in its own session (as every service does: ``await db.get(User, user.id, with_for_update=True)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, inspect
from sqlalchemy.orm import make_transient_to_detached

T = TypeVar("T")


@dataclass(frozen=True)
class Shape(Generic[T]):
    """A mapped class's loaded columns (deferred ones left out), in the order a Core select returns them."""

    cls: type[T]
    keys: tuple[str, ...]
    columns: tuple[ColumnElement[Any], ...]

    def __len__(self) -> int:
        return len(self.keys)


def shape_of(cls: type[T]) -> Shape[T]:
    mapper = inspect(cls)
    attributes = [attribute for attribute in mapper.column_attrs if not attribute.deferred]
    return Shape(cls, tuple(a.key for a in attributes), tuple(a.columns[0] for a in attributes))


def detached(shape: Shape[T], row: Sequence[Any], start: int = 0) -> T:
    """The object of ``shape`` whose columns are ``row[start:start + len(shape)]`` (see the module docstring)."""
    manager = inspect(shape.cls).class_manager
    instance = cast(T, manager.new_instance())
    instance.__dict__.update(zip(shape.keys, row[start : start + len(shape.keys)], strict=True))
    make_transient_to_detached(instance)
    return instance
