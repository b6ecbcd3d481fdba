"""The API token: generated once with mode 0600, or set explicitly; compared in constant time."""

from __future__ import annotations

import stat
from pathlib import Path

from homeiq_addon.api.auth import bearer_token_matches, load_or_create_token


def test_first_start_generates_a_private_token_and_later_starts_reuse_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / "token"
    token = load_or_create_token(path)
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == token


def test_explicit_token_wins_and_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "token"
    assert load_or_create_token(path, "explicit-token-0123456789") == "explicit-token-0123456789"
    assert not path.exists()


def test_a_token_file_with_loose_permissions_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("copied-in-token-0123456789\n")
    path.chmod(0o644)
    assert load_or_create_token(path) == "copied-in-token-0123456789"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_empty_token_file_is_replaced_by_a_new_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("")  # left by a crash mid-write in an older version, or by hand
    token = load_or_create_token(path)
    assert token
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["token"]


def test_bearer_header_parsing() -> None:
    token = "abc-token-0123456789"
    assert bearer_token_matches(f"Bearer {token}", token)
    assert bearer_token_matches(f"bearer {token}", token)
    assert not bearer_token_matches(None, token)
    assert not bearer_token_matches("", token)
    assert not bearer_token_matches(f"Basic {token}", token)
    assert not bearer_token_matches(f"Bearer {token}x", token)
    assert not bearer_token_matches("Bearer ", token)
    assert not bearer_token_matches(token, token)
