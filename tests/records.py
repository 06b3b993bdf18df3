"""Read a whole store back for assertions: tests may hold every release; the product never does."""

from __future__ import annotations

from feeds.model import Release, State
from feeds.store import Store


def all_releases(store: Store) -> list[Release]:
    """Every release ever seen, present or not, in number order."""
    with store.read() as reader:
        state = reader.state()
        return reader.members(None, 1, state.releases)


def everything(store: Store) -> tuple[State, list[Release]]:
    """The store's state and every release, read in one transaction."""
    with store.read() as reader:
        state = reader.state()
        return state, reader.members(None, 1, state.releases)
