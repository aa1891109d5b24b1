"""Compound and sequence triggers over their children's stored firings (spec §10)."""

from __future__ import annotations

from service.core.firings import Firing, composite_firing_id
from service.core.store import StateStore
from service.core.triggers import CompiledComposite

__all__ = ["child_fired"]


def child_fired(
    parent: CompiledComposite, firing: Firing, wall: int, store: StateStore
) -> Firing | None:
    """Take one child firing; return the parent's firing when it is ready (§10.2-10.3)."""
    if parent.needed == 1:
        # `any`, `require: 1` or a single child: fire at once, store nothing.
        return _parent_firing(parent, (firing,), firing, wall)
    rows = store.child_firings(parent.id)
    if parent.within is not None:
        cutoff = firing.fired_at - parent.within
        rows = [row for row in rows if row.fired_at >= cutoff]
    # One row per child: a newer firing of the same child replaces the older one. In the
    # stream service firings of one child may arrive out of order, so newer means later.
    same = [row for row in rows if row.trigger_id == firing.trigger_id]
    if any(row.fired_at > firing.fired_at for row in same):
        return None
    rows = [row for row in rows if row.trigger_id != firing.trigger_id]
    rows.append(firing)
    if not _ready(parent, rows):
        store.put_child_firings(parent.id, rows)
        return None
    store.put_child_firings(parent.id, [])
    return _parent_firing(parent, tuple(rows), firing, wall)


def _ready(parent: CompiledComposite, rows: list[Firing]) -> bool:
    if parent.kind == "compound":
        return len(rows) >= parent.needed
    # A sequence needs every child, and their latest firings in declared order. Ties
    # (one event firing two children) keep the order they were stored in.
    ordered = sorted(rows, key=lambda row: row.fired_at)
    return [row.trigger_id for row in ordered] == [child.id for child in parent.children]


def _parent_firing(
    parent: CompiledComposite, rows: tuple[Firing, ...], firing: Firing, wall: int
) -> Firing:
    position = {child.id: index for index, child in enumerate(parent.children)}
    children = tuple(sorted(rows, key=lambda row: (position[row.trigger_id], row.fired_at)))
    return Firing(
        id=composite_firing_id(parent.id, children),
        trigger_id=parent.id,
        automation_id=parent.automation.id,
        fired_at=wall,
        labels={},
        triggering_event=firing.triggering_event,
        child_firings=children,
    )
