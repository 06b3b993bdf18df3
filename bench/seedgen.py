"""Generated seed text for the benchmarks: ``count`` releases spread over files.

Each release is ``Title N`` / ``Source: Agency K`` / body paragraphs, in the
grammar of the real seeds (a title paragraph, a one-line ``Source:``
paragraph, then the body up to the next title). Bodies are about 1 KB, close
to the real releases in ``seeds/``. Deterministic: the same arguments always
write the same bytes.

:func:`write_corpus` writes a larger, varied corpus for ``bench/sync.py``: about
1 KB a release, 3 or 4 paragraphs, a date line on about a third, 8 agencies.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

_FIRST = (
    "Body paragraph {n}: investigators from {k} member countries coordinated an operation "
    "against an organised crime network suspected of fraud, money laundering and the "
    "trafficking of firearms across several borders."
)
_SECOND = (
    "During the action day, officers searched premises, seized assets and documents and "
    "arrested suspects. The agency supported the investigation with analysis, operational "
    "meetings and a mobile office deployed on the spot; cross-checks against its databases "
    "produced new leads for the national authorities involved."
)
_THIRD = (
    "The investigation continues. Further arrests are expected as the seized devices and "
    "records are analysed, and the agency will keep supporting the countries involved."
)


def release_text(n: int, agencies: int) -> str:
    """One release as seed text, ending with a blank line."""
    k = n % agencies
    return (
        f"Title {n}\n\nSource: Agency {k}\n\n"
        f"{_FIRST.format(n=n, k=k + 2)}\n\n{_SECOND}\n\n{_THIRD}\n\n"
    )


def write_seeds(
    directory: Path, count: int, *, agencies: int = 5, per_file: int = 100
) -> list[Path]:
    """Write ``count`` releases of ``agencies`` agencies into ``directory``, ``per_file`` a file."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for start in range(0, count, per_file):
        stop = min(start + per_file, count)
        path = directory / f"gen_{start // per_file:05d}.txt"
        path.write_text("".join(release_text(n, agencies) for n in range(start, stop)), "utf-8")
        paths.append(path)
    return paths


# -- a larger, varied corpus (bench/sync.py) ------------------------------------------

#: Agencies of the varied corpus: an accented name and a channel in parentheses among them.
CORPUS_AGENCIES = (
    "Europol",
    "Eurojust",
    "Frontex",
    "European Anti-Fraud Office",
    "Agência Europeia (Press Office)",
    "Interpol",
    "European Public Prosecutor's Office",
    "Customs Cooperation Council (Newsroom)",
)
_MONTH_NAMES = (
    "January February March April May June July August September October November December"
).split()
_SUBJECTS = (
    "Joint action day",
    "Cross-border operation",
    "Coordinated investigation",
    "Joint investigation team",
    "Operational task force",
    "International police cooperation",
)
_VERBS = ("dismantles", "disrupts", "targets", "takes down", "uncovers", "hits")
_OBJECTS = (
    "criminal network behind online investment fraud",
    "firearms trafficking ring",
    "money laundering scheme worth millions",
    "migrant smuggling network",
    "cocaine trafficking organisation",
    "VAT fraud carousel",
    "counterfeit medicine suppliers",
    "ransomware affiliates",
)
_SENTENCES = (
    "Investigators from {k} countries coordinated their work over {m} months, exchanging "
    "intelligence through secure channels and meeting regularly to plan the final phase.",
    "During the action day, officers searched {m} premises, seized cash, vehicles, luxury "
    "goods and documents, and arrested {k} suspects believed to be at the core of the network.",
    "The agency supported the investigation with operational analysis, financial "
    "intelligence and a mobile office deployed on the spot – the agency’s usual support.",
    "Cross-checks against its databases produced new leads for the national authorities "
    "involved, several of which point to accomplices in other countries.",
    "The suspects are believed to have laundered the proceeds through a web of shell "
    "companies, cryptocurrency exchanges and cash couriers.",
    "Victims were contacted by phone and lured with promises of high returns, then pressed "
    "to invest ever larger sums before the platforms disappeared.",
    "Seized devices and records are now being analysed, and further arrests are expected in "
    "the coming weeks.",
    "The operation was carried out under the framework of the European Multidisciplinary "
    "Platform Against Criminal Threats (EMPACT).",
    "Prosecutors estimate the damage at more than EUR {m} million; assets worth EUR {k} "
    "million have been frozen so far.",
    "The network used “encrypted” communication tools and frequently changed its logistics "
    "routes to avoid detection by the authorities.",
    "Specialists in cybercrime and financial investigations were deployed to assist the "
    "national teams during the searches.",
    "All suspects are presumed innocent until proven guilty in accordance with the law.",
)


def _corpus_date(rng: random.Random) -> tuple[int, str, int]:
    return rng.randint(1, 28), rng.choice(_MONTH_NAMES), rng.randint(2015, 2024)


def corpus_release(n: int, *, agencies: int = 8, seed: int = 1) -> str:
    """Release ``n`` of the varied corpus, about 1 KB, ending with a blank line.

    Depends only on ``(n, agencies, seed)``, so a release has the same bytes whichever file
    holds it. A title paragraph, a ``Source:`` line (of ``agencies`` agencies), a date line
    on about a third of them, then 3 or 4 paragraphs of 1 to 3 sentences; the first
    paragraph of some holds a date in running text. Like the real seeds, the text has
    curly quotes and dashes (so Python holds it as 2 bytes a character, not 1).
    """
    rng = random.Random(seed * 1_000_003 + n)
    agency = CORPUS_AGENCIES[n % agencies]
    title = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} ({n})"
    parts = [title, f"Source: {agency}"]
    if rng.random() < 0.35:
        day, month, year = _corpus_date(rng)
        parts.append(f"{day} {month} {year}")
    for index in range(rng.randint(3, 4)):
        sentences = [
            rng.choice(_SENTENCES).format(k=rng.randint(2, 30), m=rng.randint(2, 90))
            for _ in range(rng.randint(1, 3))
        ]
        if index == 0 and rng.random() < 0.3:
            day, month, year = _corpus_date(rng)
            sentences.insert(0, f"On {day} {month} {year}, the operation reached its final phase.")
        parts.append(" ".join(sentences))
    return "\n\n".join(parts) + "\n\n"


def write_corpus(
    layouts: Mapping[Path, int], count: int, *, agencies: int = 8, seed: int = 1
) -> dict[Path, list[Path]]:
    """Write releases ``0 .. count-1`` of the varied corpus into each directory of ``layouts``.

    ``layouts`` maps a directory to its releases per file: each directory holds the same
    releases (generated once), grouped differently, in order. Deterministic: same
    arguments, same bytes. Returns the files written, by directory.
    """
    written: dict[Path, list[Path]] = {}
    pending: dict[Path, list[str]] = {}
    for directory in layouts:
        directory.mkdir(parents=True, exist_ok=True)
        written[directory], pending[directory] = [], []

    def flush(directory: Path) -> None:
        path = directory / f"corpus_{len(written[directory]):05d}.txt"
        path.write_bytes("".join(pending[directory]).encode("utf-8"))
        written[directory].append(path)
        pending[directory].clear()

    for n in range(count):
        text = corpus_release(n, agencies=agencies, seed=seed)
        for directory, per_file in layouts.items():
            pending[directory].append(text)
            if len(pending[directory]) == per_file:
                flush(directory)
    for directory in layouts:
        if pending[directory]:
            flush(directory)
    return written
