"""What a sync does to each release it touched: pure decisions, no I/O.

The store hands over only the releases whose copies came or went in this sync
(a :class:`Candidate` each: every copy the seeds still hold, and the release as
stored); this module decides what each becomes, and the store writes that down.
Keeping the rules here, in plain Python over a few rows, is what lets every
store backend share them (the model is reader's ``_update`` ``Decider``).

The rules (DESIGN.md "Identity"):

- Among several copies of one release the heaviest wins: most text, then the
  highest content hash, then the highest file-content hash and place. Content
  decides, never a file name or the order of reading.
- A release with no copy left leaves the feeds (``gone``); the store keeps it,
  so if it comes back it keeps its ID, number, first-seen and, unless its
  content changed, ``updated``.
- ``updated`` moves only when the content hash changes, and then always
  forward: a change is strictly newer than what readers hold, even within one
  second.
- New releases are numbered in the order the store hands them over: by the
  first file name holding them, then their place in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["new", "changed", "returned", "rewritten", "moved", "gone", "same"]
#: Kinds that readers see (and that move the store's generation).
VISIBLE: frozenset[str] = frozenset({"new", "changed", "returned", "rewritten", "gone"})


@dataclass(frozen=True, slots=True)
class CopyRow:
    """One copy of a release in one stored content, without its text."""

    id: str
    content: int
    """The store's key of the content (one seed file's bytes) holding the copy."""
    sha256: str
    """That content's hash: the last tie-break between equally heavy copies."""
    idx: int
    """Place of the copy in its content."""
    agency_slug: str
    agency: str
    content_hash: str
    exact: bytes
    """Digest of the copy's exact text: equal content hashes may differ in whitespace."""
    weight: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.content, self.idx)


@dataclass(frozen=True, slots=True)
class Held:
    """A release as the store holds it, as far as deciding needs."""

    seq: int
    agency_slug: str
    agency: str
    content_hash: str
    exact: bytes
    present: bool
    first_seen: int
    updated: int
    """Seconds since the epoch, like every stored time."""
    winner: tuple[int, int] | None
    """Key of the copy its text came from, if that copy is still stored."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A release this sync touched: its copies now, and what the store held."""

    id: str
    copies: tuple[CopyRow, ...]
    held: Held | None


@dataclass(frozen=True, slots=True)
class Decision:
    """What the store writes for one release."""

    id: str
    kind: Kind
    winner: CopyRow | None
    """The copy whose text the release takes (None for ``gone`` and ``same``)."""
    held: Held | None
    seq: int = 0
    """The release's number (assigned here for ``new``)."""
    agency_pos: int = 0
    """Its number within its agency's feed (assigned here for ``new``)."""
    updated: int = 0
    """Its ``updated`` after this sync (seconds)."""

    @property
    def was_present(self) -> bool:
        return self.held is not None and self.held.present

    @property
    def present(self) -> bool:
        return self.kind != "gone" and (self.winner is not None or self.was_present)


def winner(copies: Iterable[CopyRow]) -> CopyRow:
    """The copy that speaks for a release: decided by content alone."""
    return max(copies, key=lambda c: (c.weight, c.content_hash, c.sha256, c.idx))


def kind_of(candidate: Candidate, best: CopyRow | None) -> Kind:
    held = candidate.held
    if best is None:
        return "gone" if held is not None and held.present else "same"
    if held is None:
        return "new"
    if held.content_hash != best.content_hash:
        return "changed"
    if not held.present:
        return "returned"
    if held.exact != best.exact or held.agency_slug != best.agency_slug:
        return "rewritten"
    if held.winner != best.key:
        return "moved"
    return "same"


@dataclass
class Numbering:
    """Hands out release numbers and per-agency feed numbers to new releases, in order."""

    next_seq: int
    next_pos: dict[str, int]

    def take(self, agency_slug: str) -> tuple[int, int]:
        seq = self.next_seq
        self.next_seq += 1
        pos = self.next_pos.get(agency_slug, 1)
        self.next_pos[agency_slug] = pos + 1
        return seq, pos


def decide(candidate: Candidate, now: int, numbering: Numbering) -> Decision:
    """What ``candidate`` becomes in a sync at ``now`` (seconds)."""
    best = winner(candidate.copies) if candidate.copies else None
    kind = kind_of(candidate, best)
    held = candidate.held
    if kind == "new":
        assert best is not None
        seq, pos = numbering.take(best.agency_slug)
        return Decision(candidate.id, kind, best, None, seq, pos, now)
    assert held is not None or kind == "same"
    if held is None:
        return Decision(candidate.id, "same", None, None)
    updated = max(now, held.updated + 1) if kind == "changed" else held.updated
    return Decision(candidate.id, kind, best, held, held.seq, 0, updated)


@dataclass
class AgencyTally:
    """What one sync did to one agency's feed, for its running totals."""

    present: int = 0
    """Change in the number of present releases."""
    updated: int | None = None
    """Latest ``updated`` or departure written in this sync."""
    names: dict[str, int] = field(default_factory=dict)
    """Change in how many present releases spell the agency's name each way."""
    visible: bool = False


@dataclass
class Tally:
    """What one sync decided, summed up: counts, sample IDs and per-agency totals."""

    samples: int
    counts: dict[str, int] = field(
        default_factory=lambda: {"new": 0, "changed": 0, "gone": 0, "returned": 0}
    )
    ids: dict[str, list[str]] = field(
        default_factory=lambda: {"new": [], "changed": [], "gone": [], "returned": []}
    )
    agencies: dict[str, AgencyTally] = field(default_factory=dict)
    written: int = 0

    def _note(self, outcome: str, release_id: str) -> None:
        self.counts[outcome] += 1
        if len(self.ids[outcome]) < self.samples:
            self.ids[outcome].append(release_id)

    def add(self, decision: Decision, now: int) -> None:
        kind = decision.kind
        if kind in ("new", "changed", "gone"):
            self._note(kind, decision.id)
        if kind in ("changed", "returned") and not decision.was_present:
            self._note("returned", decision.id)
        if kind not in VISIBLE:
            return
        self.written += 1
        held, best = decision.held, decision.winner
        if held is not None:
            self._agency(held.agency_slug, held.agency, -1 if held.present else 0, None)
        if best is not None:
            self._agency(best.agency_slug, best.agency, 1, decision.updated)
        if kind == "gone" and held is not None:
            self._agency(held.agency_slug, held.agency, 0, now)

    def _agency(self, slug: str, name: str, present: int, moment: int | None) -> None:
        tally = self.agencies.setdefault(slug, AgencyTally())
        tally.visible = True
        if present:
            tally.present += present
            tally.names[name] = tally.names.get(name, 0) + present
        if moment is not None and (tally.updated is None or moment > tally.updated):
            tally.updated = moment
