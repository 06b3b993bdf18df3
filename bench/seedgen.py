"""Generated seed text for the benchmarks: ``count`` releases spread over files.

Each release is ``Title N`` / ``Source: Agency K`` / body paragraphs, in the
grammar of the real seeds (a title paragraph, a one-line ``Source:``
paragraph, then the body up to the next title). Bodies are about 1 KB, close
to the real releases in ``seeds/``. Deterministic: the same arguments always
write the same bytes.
"""

from __future__ import annotations

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
