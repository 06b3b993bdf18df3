"""Frozen records that flow between the steps: what the seeds say, and what the service owns.

A :class:`Draft` is data that comes from the seed files and nothing else; a
:class:`Release` is a draft plus what the service keeps about it (its ID, number,
first-seen and updated times, content hash, presence). Contains no logic beyond
small derived properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What ``stat`` says about a file: if all three match, the file is not reopened."""

    size: int
    mtime_ns: int
    inode: int


Severity = Literal["problem", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with the input, located by file and 1-based line (0: whole file).

    A ``problem`` is input that is not published as written; a ``warning`` is a
    near-miss that the grammar accepts but a person probably did not mean (a date
    line that is not a date, ``Source Europol``): it never changes what is published.
    """

    path: str
    line: int
    message: str
    severity: Severity = "problem"

    @property
    def is_warning(self) -> bool:
        return self.severity == "warning"

    def __str__(self) -> str:
        """``path:line: message``, or ``path:line: warning: message``, as compilers print."""
        if self.severity == "warning":
            return f"{self.path}:{self.line}: warning: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Draft:
    """One press release as parsed from a seed file, before the service knows it."""

    agency: str
    """Agency name as written after ``Source: ``, without the parenthesised channel."""
    agency_slug: str
    channel: str | None
    title: str
    date_line: date | None
    """The date from a paragraph that is only a date; part of the identity key."""
    published: date | None
    """The release's own date: the date line, else the first full date in the first paragraph."""
    paragraphs: tuple[str, ...]
    """Body paragraphs; lines within a paragraph are joined with ``\\n``."""
    line: int
    """Line of the title in its file (for problems and diagnostics only)."""

    @property
    def summary(self) -> str:
        """The first paragraph, or the empty string for a release with no body."""
        return self.paragraphs[0] if self.paragraphs else ""


TopicKind = Literal["countries", "operations", "crime-areas"]


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic of a release: its kind, its slug (the URL part) and its display name."""

    kind: TopicKind
    slug: str
    name: str

    @property
    def key(self) -> str:
        """``kind/slug``: the topic's name among feeds (``countries/es``)."""
        return f"{self.kind}/{self.slug}"


@dataclass(frozen=True, slots=True)
class Release:
    """A release as the service keeps it: the latest winning draft plus service-owned data."""

    id: str
    """``urn:uuid:...``; see :mod:`feeds.ids`."""
    seq: int
    """Number in first-seen order, 1-based, never reused."""
    draft: Draft
    content_hash: str
    first_seen: datetime
    updated: datetime
    present: bool
    left_at: datetime | None = None
    """Last time it left the seeds (kept if it came back): feeds' ``updated`` counts it."""
    topics: tuple[Topic, ...] = ()
    """What its text is about, found by the sync (:mod:`feeds.topics`), by kind and slug."""

    @property
    def uuid(self) -> str:
        """The UUID part of the ID, as used in ``/releases/<uuid>`` URLs."""
        return self.id.removeprefix("urn:uuid:")


@dataclass(frozen=True, slots=True)
class Agency:
    """An agency once seen in the seeds (it keeps its feed URL forever), with its feed's totals.

    The totals are kept by the sync as it changes releases, so no reader counts rows.
    """

    slug: str
    name: str
    first_seen: datetime
    present_count: int = 0
    members: int = 0
    """Releases ever seen (gone ones too): numbers 1..members in the agency's feed."""
    updated: datetime | None = None
    """Latest ``updated`` of a present release or departure of a gone one; None if neither."""
    newest: date | None = None
    """Latest ``published`` date among present releases."""
    generation: int = 0
    """The store generation in which this agency's documents last changed."""

    @property
    def feed_updated(self) -> datetime:
        """Its feed's ``updated``: never "now", the first sighting when nothing else dates it."""
        return self.updated if self.updated is not None else self.first_seen


@dataclass(frozen=True, slots=True)
class TopicFeed:
    """A topic once found in a release (it keeps its feed URL forever), with its feed's totals."""

    topic: Topic
    first_seen: datetime
    present_count: int = 0
    members: int = 0
    """Releases ever tagged with it: numbers 1..members in the topic's feed."""
    updated: datetime | None = None
    generation: int = 0

    @property
    def key(self) -> str:
        return self.topic.key

    @property
    def feed_updated(self) -> datetime:
        return self.updated if self.updated is not None else self.first_seen


#: Most IDs a sync report lists per outcome: a first sync of 100,000 releases must not
#: hold them all in memory just to report them.
SAMPLE_IDS = 100


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync did, for logs, the CLI and ``/healthz``."""

    started: datetime
    finished: datetime
    ok: bool
    files_seen: int = 0
    files_read: int = 0
    files_skipped: int = 0
    new: tuple[str, ...] = ()
    """IDs of new releases (at most :data:`SAMPLE_IDS`; ``counts`` has the totals)."""
    changed: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    returned: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    """Totals by outcome: ``new``, ``changed``, ``gone``, ``returned``."""
    problems: tuple[Problem, ...] = ()
    """Problems and warnings (``Problem.severity``) of every seed file, by file and line."""
    agencies: tuple[str, ...] = ()
    """Slugs of the agencies whose feeds changed (for WebSub pings)."""
    topics: tuple[str, ...] = ()
    """Keys (``kind/slug``) of the topics whose feeds changed (for WebSub pings)."""
    error: str | None = None
    generation: int = 0

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()

    def count(self, outcome: str) -> int:
        """How many releases had ``outcome`` (new, changed, gone, returned)."""
        listed: tuple[str, ...] = getattr(self, outcome)
        return self.counts.get(outcome, len(listed))

    def count_warnings(self) -> int:
        """How many of :attr:`problems` are warnings (near-misses, nothing lost)."""
        return sum(problem.severity == "warning" for problem in self.problems)

    def count_problems(self) -> int:
        """How many of :attr:`problems` are problems proper (input not published as written)."""
        return len(self.problems) - self.count_warnings()

    def summary(self) -> str:
        """One key=value line, for logs."""
        if not self.ok:
            return f"sync failed error={self.error!r} seconds={self.seconds:.3f}"
        return (
            f"sync ok files={self.files_seen} read={self.files_read} "
            f"skipped={self.files_skipped} new={self.count('new')} "
            f"changed={self.count('changed')} gone={self.count('gone')} "
            f"returned={self.count('returned')} "
            f"problems={self.count_problems()} warnings={self.count_warnings()} "
            f"seconds={self.seconds:.3f}"
        )


@dataclass(frozen=True, slots=True)
class State:
    """What a store holds, in brief: its generation and agencies (a few rows, never releases)."""

    generation: int
    """Bumped by every sync that changed what readers see; caches key on it."""
    created: datetime
    agencies: tuple[Agency, ...]
    """Every agency ever seen, by slug."""
    releases: int = 0
    """Releases ever seen (gone ones too); their numbers are 1..releases."""
    topics: tuple[TopicFeed, ...] = ()
    """Every topic ever found, by kind and slug."""

    def agency(self, slug: str) -> Agency | None:
        for agency in self.agencies:
            if agency.slug == slug:
                return agency
        return None

    @property
    def by_slug(self) -> dict[str, Agency]:
        return {a.slug: a for a in self.agencies}

    def topic(self, key: str) -> TopicFeed | None:
        """The topic feed named ``kind/slug``, if that topic was ever found."""
        for found in self.topics:
            if found.key == key:
                return found
        return None

    def generations(self) -> dict[str, int]:
        """Each agency's (by slug) and topic's (by ``kind/slug``) last changing generation."""
        found = {a.slug: a.generation for a in self.agencies}
        found.update((t.key, t.generation) for t in self.topics)
        return found

    @property
    def present(self) -> int:
        """Releases in the seeds now."""
        return sum(a.present_count for a in self.agencies)

    @property
    def updated(self) -> datetime:
        """When anything readers see last changed; the store's creation if nothing did."""
        moments = [a.updated for a in self.agencies if a.updated is not None]
        return max(moments) if moments else self.created
