"""The ``feeds`` command: sync prints what it did, check prints problems like a compiler."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from feeds.cli import _ProgressBar, main

from .servers import clean_environ, free_port

FEEDS = Path(sys.executable).parent / "feeds"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ["SEED_DIR", "DATABASE", "BASE_URL", "PORT", "SCHEDULER"]:
        monkeypatch.delenv(f"FEEDS_{name}", raising=False)
    monkeypatch.setenv("FEEDS_DATABASE", str(tmp_path / "db" / "feeds.sqlite3"))


def test_sync_prints_a_report_then_nothing_new(
    real_seed_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEEDS_SEED_DIR", str(real_seed_dir))
    assert main(["sync"]) == 0
    first = capsys.readouterr().out
    assert "releases new            10" in first
    assert main(["sync"]) == 0
    second = capsys.readouterr().out
    assert "releases new             0" in second
    assert "files unchanged          1" in second


def test_check_clean_directory(real_seed_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(real_seed_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "1 file, 10 releases, 0 problems, 0 warnings" in captured.err


def test_check_prints_path_line_message(seed_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (seed_dir / "a.txt").write_text(
        "Preamble\n\nTitle\n\nSource: NATO\n\nBody\n\nx\x01y\n", encoding="utf-8"
    )
    assert main(["check", str(seed_dir)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{seed_dir / 'a.txt'}:1: text before the first release is not published",
        f"{seed_dir / 'a.txt'}:9: removed control or non-character code points",
    ]


#: One file with a problem (line 1) and two near-misses (lines 7 and 11), in line order.
NEAR_MISSES = "Preamble\n\nTitle\n\nSource: NATO\n\n31 February 2026\n\nBody.\n\nSource Europol\n"


def test_check_prints_warnings_after_problems_of_their_line(
    seed_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (seed_dir / "a.txt").write_text(NEAR_MISSES, encoding="utf-8")
    assert main(["check", str(seed_dir)]) == 1
    captured = capsys.readouterr()
    path = seed_dir / "a.txt"
    assert captured.out.splitlines() == [
        f"{path}:1: text before the first release is not published",
        f"{path}:7: warning: '31 February 2026' looks like a date line but is not a calendar "
        "date; it is published as body text and gives the release no date",
        f"{path}:11: warning: 'Source Europol' looks like a Source line but is not one "
        "(a Source line is a paragraph starting with exactly 'Source: '); it is read as text",
    ]
    assert captured.err.strip() == "1 file, 1 release, 1 problem, 2 warnings"


@pytest.mark.parametrize(("strict", "status"), [([], 0), (["--strict"], 1)])
def test_check_fails_on_warnings_only_when_strict(
    seed_dir: Path, capsys: pytest.CaptureFixture[str], strict: list[str], status: int
) -> None:
    (seed_dir / "a.txt").write_text(NEAR_MISSES.removeprefix("Preamble\n\n"), encoding="utf-8")
    assert main(["check", *strict, str(seed_dir)]) == status
    captured = capsys.readouterr()
    assert [line.split(": ")[1] for line in captured.out.splitlines()] == ["warning"] * 2
    assert captured.err.strip() == "1 file, 1 release, 0 problems, 2 warnings"


def test_check_strict_passes_the_real_seeds(
    real_seed_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--strict", str(real_seed_dir)]) == 0
    assert capsys.readouterr().out == ""


def test_check_stores_nothing(seed_dir: Path, tmp_path: Path) -> None:
    (seed_dir / "a.txt").write_text("T\n\nSource: NATO\n\nB\n", encoding="utf-8")
    main(["check", str(seed_dir)])
    assert not (tmp_path / "db").exists()


def test_invalid_configuration_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEEDS_SYNC_INTERVAL", "-1")
    assert main(["sync"]) == 2
    assert "FEEDS_SYNC_INTERVAL" in capsys.readouterr().err


def test_help_lists_commands_and_settings() -> None:
    result = subprocess.run(
        [str(FEEDS), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for word in ["serve", "sync", "check", "FEEDS_SEED_DIR", "FEEDS_SYNC_INTERVAL"]:
        assert word in result.stdout
    # True defaults: an empty one says what empty means; a derived one gives its rule.
    assert "(derived)" not in result.stdout
    shown = dict(
        line.split(" default ", 1) for line in result.stdout.splitlines() if " default " in line
    )
    shown = {k.strip(): v.strip() for k, v in shown.items()}
    assert shown["FEEDS_WEBSUB_HUB"] == "(empty: off)"
    assert shown["FEEDS_TRUSTED_HOSTS"] == "(empty: any host)"
    assert shown["FEEDS_BASE_URL"] == "http://127.0.0.1:<FEEDS_PORT>"
    assert shown["FEEDS_PAGE_SIZE"] == "50"


def test_check_counts_in_words(seed_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.txt", "b.txt"):
        (seed_dir / name).write_text("T\n\nSource: NATO\n\nB\n", encoding="utf-8")
    assert main(["check", str(seed_dir)]) == 0
    assert "2 files, 2 releases, 0 problems" in capsys.readouterr().err
    (seed_dir / "b.txt").unlink()
    (seed_dir / "a.txt").write_text("Preamble\n\nT\n\nSource: NATO\n\nB\n", encoding="utf-8")
    assert main(["check", str(seed_dir)]) == 1
    assert "1 file, 1 release, 1 problem" in capsys.readouterr().err


def test_missing_seed_directory_stops_serve_and_fails_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-seeds"
    monkeypatch.setenv("FEEDS_SEED_DIR", str(missing))
    assert main(["serve", "--port", str(free_port())]) == 2
    assert capsys.readouterr().err == (
        f"feeds: FEEDS_SEED_DIR='{missing}' is invalid: No such file or directory\n"
    )
    assert main(["sync"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"feeds: sync failed: seed directory unavailable: {missing}: No such file or directory"
    )


def test_busy_port_fails_at_once_naming_the_address(real_seed_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_environ(
            {
                "FEEDS_SEED_DIR": str(real_seed_dir),
                "FEEDS_DATABASE": str(tmp_path / "db" / "feeds.sqlite3"),
                "FEEDS_HOST": "127.0.0.1",
            }
        )
        result = subprocess.run(
            [str(FEEDS), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"feeds: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another port with --port or FEEDS_PORT"
    ]
    assert "serving" not in result.stdout + result.stderr
    assert not (tmp_path / "db").exists()  # refused before anything was touched


def test_serving_writes_no_control_socket_into_home() -> None:
    from gunicorn.config import KNOWN_SETTINGS

    from feeds import serving
    from feeds.config import load

    options = serving.options(load(environ={}))
    if any(s.name == "control_socket" for s in KNOWN_SETTINGS):
        assert options["control_socket_disable"] is True
    else:  # an older gunicorn opens no control socket at all
        assert "control_socket_disable" not in options


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    stream = _Terminal()
    bar = _ProgressBar(stream)
    for done in range(0, 5):
        bar(done, 4, done * 1_500_000)
    text = stream.getvalue()
    assert "\r[" in text and text.endswith("4/4 files, 6.0 MB read\n")
    assert "#" * _ProgressBar.WIDTH in text


def test_progress_as_log_lines_when_not_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feeds.cli")
    stream = io.StringIO()
    bar = _ProgressBar(stream)
    for done in range(0, 5):
        bar(done, 4, done * 1_000_000)
    assert stream.getvalue() == ""  # nothing drawn: a log or a pipe reads lines
    assert "sync progress files=4 total=4 mb_read=4.0" in caplog.text


def test_stats_lists_agencies(
    real_seed_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEEDS_SEED_DIR", str(real_seed_dir))
    assert main(["sync"]) == 0
    capsys.readouterr()
    assert main(["stats"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["Interpol"] == ["5", "0", "2023-08-03"]
    assert rows["NATO"] == ["2", "0", "2024-10-16"]
    assert rows["Eurojust"] == ["1", "0", "-"]
    assert rows["total"] == ["10", "0"]
