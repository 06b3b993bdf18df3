"""Filters through the store's full-text index agree with a brute-force reading of the rule.

The rule (README "Filters"): each ``q`` word appears in the title or the body as
a whole word or the start of one, ignoring case and diacritics; a word with
inner punctuation is its parts in sequence; no ``exclude`` word appears. The
reference below reads every release in Python; the store answers through its
index. Hypothesis builds random corpora and queries from a small alphabet, so
that words collide often and prefixes, accents and punctuation all occur.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from feeds import pg_store, sqlite_store
from feeds.errors import BadRequestError
from feeds.model import Release
from feeds.query import Filters, filters, tokens
from feeds.store import Store
from feeds.sync import sync

from .records import all_releases

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SYLLABLES = ["ra", "ri", "ro", "zü", "zu", "ké", "ke", "na", "an", "Ra", "ZU", "ka-ri", "ki"]


def reference_tokens(text: str) -> list[str]:
    """Words as the rule sees them: letters and digits, lower-cased, accents dropped."""
    plain = "".join(
        ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch)
    ).lower()
    words, current = [], ""
    for ch in plain:
        if ch.isalnum():
            current += ch
        elif current:
            words.append(current)
            current = ""
    if current:
        words.append(current)
    return words


def phrase_in(word: str, field: str) -> bool:
    """Whether ``word``'s parts appear in sequence in ``field``, the last as a prefix."""
    parts, have = reference_tokens(word), reference_tokens(field)
    for start in range(len(have) - len(parts) + 1):
        window = have[start : start + len(parts)]
        if window[:-1] == parts[:-1] and window[-1].startswith(parts[-1]):
            return True
    return False


def reference(releases: list[Release], wanted: Filters) -> set[str]:
    def found(word: str, release: Release) -> bool:
        fields = (release.draft.title, *release.draft.paragraphs)
        return any(phrase_in(word, field) for field in fields)

    return {
        r.id
        for r in releases
        if r.present
        and all(found(w, r) for w in wanted.q)
        and not any(found(w, r) for w in wanted.exclude)
    }


def release_text(title: str, body: str, agency: str) -> str:
    return f"{title}\n\nSource: {agency}\n\n{body}\n\n"


words = st.lists(st.sampled_from(SYLLABLES), min_size=1, max_size=3).map("".join)
texts = st.lists(words, min_size=1, max_size=8).map(" ".join)
corpora = st.lists(st.tuples(texts, texts, st.sampled_from(["Europol", "Interpol"])), max_size=12)
queries = st.lists(words, min_size=1, max_size=2).map(" ".join)


@pytest.fixture(scope="module")
def corpus_store(
    make_store: Callable[[], Store], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Store, Path]:
    """One store for every example of a module run, and its seed directory.

    Each example replaces the seeds with a file of a new name, so the store also holds
    the releases earlier examples left behind (gone) and brought back (changed).
    """
    seeds = tmp_path_factory.mktemp("search-seeds")
    return make_store(), seeds


_cases = itertools.count()


@pytest.fixture(scope="module", params=["sorted", "walked"])
def strategy(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both ways each store answers: sorting every match (PostgreSQL: those its GIN
    index finds), or (common words) walking the newest releases; the thresholds are
    lowered so small corpora walk."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "walked":
            patch.setattr(sqlite_store, "_COMMON", 1)
            patch.setattr(sqlite_store, "_WALK", 2)
            patch.setattr(pg_store, "_RARE", 1)
        yield str(request.param)


@given(corpus=corpora, q=queries, exclude=st.none() | queries)
def test_indexed_filters_match_the_reference(
    corpus_store: tuple[Store, Path],
    strategy: str,
    corpus: list[tuple[str, str, str]],
    q: str,
    exclude: str | None,
) -> None:
    store, seeds = corpus_store
    for old in seeds.iterdir():
        old.unlink()
    text = "".join(
        release_text(f"{n} {title}", body, agency) for n, (title, body, agency) in enumerate(corpus)
    )
    (seeds / f"case-{next(_cases)}.txt").write_text(text, encoding="utf-8")
    assert sync(store, seeds, clock=lambda: T0).ok
    releases = all_releases(store)
    args = {"q": [q]} if exclude is None else {"q": [q], "exclude": [exclude]}
    wanted = filters(args)
    with store.read() as reader:
        got = reader.search(None, wanted, 500)
        first = reader.search(None, wanted, 3)
    assert {r.id for r in got} == reference(releases, wanted), (q, exclude)
    assert [r.id for r in first] == [r.id for r in got[:3]]  # a limit takes the newest
    # Newest change first, as every document lists its entries.
    assert [r.seq for r in got] == sorted(
        (r.seq for r in got), key=lambda seq: newest_key(releases, seq)
    )


def newest_key(releases: list[Release], seq: int) -> tuple[float, bool, int]:
    """Where release number ``seq`` sorts in newest-first order."""
    found = next(r for r in releases if r.seq == seq)
    return (-found.updated.timestamp(), found.updated == found.first_seen, -seq)


def test_the_rule_s_words_are_the_reference_s() -> None:
    """The shared tokenizer (what PostgreSQL indexes) splits text as the reference does."""
    for text in ("Zürich e-commerce", "ka-ri  ZU ké", "İstanbul, 3rd—4th"):
        assert tokens(text) == reference_tokens(text)


def test_prefixes_accents_and_inner_punctuation(store: Store, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text(
        release_text("Traffickers held in Zürich", "An e-commerce fraud.", "Europol")
        + release_text("Cooperation agreement", "Signed in Geneva.", "Europol"),
        encoding="utf-8",
    )
    assert sync(store, seeds, clock=lambda: T0).ok

    def titles(**args: str) -> list[str]:
        with store.read() as reader:
            found = reader.search(None, filters({k: [v] for k, v in args.items()}), 50)
        return [r.draft.title for r in found]

    assert titles(q="traffick") == ["Traffickers held in Zürich"]
    assert titles(q="ZURICH") == ["Traffickers held in Zürich"]
    assert titles(q="e-commerce") == ["Traffickers held in Zürich"]
    assert titles(q="operation") == []  # not inside "Cooperation"
    assert titles(q="cooperation geneva") == ["Cooperation agreement"]
    assert titles(q="in", exclude="zurich") == ["Cooperation agreement"]


def test_a_word_without_letters_or_digits_is_refused() -> None:
    with pytest.raises(BadRequestError, match="letter or digit"):
        filters({"q": ["fraud --"]})


def test_since_and_limit_use_stored_times(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text(release_text("First", "Body one.", "Europol"), encoding="utf-8")
    app = make_app(seeds)
    store = app.extensions["feeds.site"].store
    later = datetime.now(UTC) + timedelta(hours=1)
    (seeds / "b.txt").write_text(release_text("Second", "Body two.", "Europol"), encoding="utf-8")
    assert sync(store, seeds, clock=lambda: later).ok
    client = app.test_client()
    since = (later - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = client.get(f"/feeds/all.atom?since={since}").get_data(as_text=True)
    assert "Second" in body and "First" not in body
    body = client.get("/feeds/all.atom?limit=1").get_data(as_text=True)
    assert body.count("<entry>") == 1 and "Second" in body
