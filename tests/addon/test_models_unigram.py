"""The compact Unigram tokenizer gives tokenizers' ids, with a fraction of its memory."""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from tokenizers import Tokenizer

from homeiq_addon.launch import minilm_model_dir
from homeiq_addon.models import unigram
from homeiq_addon.models.loaded import load_tokenizer
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.unigram import UnigramTokenizer
from tests.real_tokenizers import t5_tokenizer_json, xlmr_tokenizer_json

QUERY = "Which of these would make a useful automation?"
# Letters, digits, punctuation, accents, combining marks, CJK, Hangul, Cyrillic, Greek, emoji,
# odd whitespace and the pieces of special tokens: characters the vocabularies have and lack.
ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ  0123456789.,:;!?-_'\"()/<>éèüößçñ\u0301日本語中文한국어"
    "русскийΑΒΓ\u200b\t\n\u00a0\u3000€😀🏠sk"
)
SPECIAL_TEXTS = [
    "",
    " ",
    "  two  spaces  ",
    "<mask>",
    " <mask> x",
    "a<mask>b",
    "</s>hello<s>",
    "<pad><unk>x",
    "<extra_id_0> hi",
    "x" * 3000,
    "Küche Licht schaltet sich um 07:00 an",
    "Bedroom light turns on around 07:00 on weekdays",
]


def corpus(n: int, seed: int) -> list[str]:
    """Pattern texts, random strings over ALPHABET, special tokens inside text, long texts."""
    rnd = random.Random(seed)
    texts = pattern_texts(n, seed=seed) + SPECIAL_TEXTS
    texts += ["".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 80))) for _ in range(n)]
    texts += [f"{a} <mask>{b}</s>" for a, b in zip(texts[:20], texts[-20:], strict=True)]
    return texts


def outcome(tok: Tokenizer | UnigramTokenizer, *args: Any, **kwargs: Any) -> list[int] | str:
    """``tok.encode(*args, **kwargs)``'s ids, or the error message when it fails (tokenizers
    raises a plain Exception)."""
    try:
        return list(tok.encode(*args, **kwargs).ids)
    except Exception as err:
        return f"error: {err}"


def batch_outcome(tok: Tokenizer | UnigramTokenizer, batch: list[tuple[str, str]]) -> list[list[int]] | str:
    """The ids of ``tok.encode_batch_fast(batch)``, or the error message."""
    try:
        return [list(e.ids) for e in tok.encode_batch_fast(batch)]
    except Exception as err:
        return f"error: {err}"


def assert_same(ref: Tokenizer, ours: UnigramTokenizer, texts: list[str], max_length: int) -> None:
    """Single texts (with and without special tokens) and pairs, cut at ``max_length`` by every
    strategy the add-on uses, encode to the same ids (or fail with the same message)."""
    pairs = [(QUERY, t) for t in texts] + list(zip(texts[::2], texts[1::2], strict=False))
    for strategy in ("longest_first", "only_second"):
        ref.enable_truncation(max_length, strategy=strategy)
        ours.enable_truncation(max_length, strategy=strategy)
        for text in texts:
            for special in (True, False):
                expected = outcome(ref, text, add_special_tokens=special)
                assert outcome(ours, text, add_special_tokens=special) == expected, (text, special)
        for first, second in pairs:
            assert outcome(ours, first, second) == outcome(ref, first, second), (strategy, first, second)
        batch = [(QUERY, t) for t in texts[:50]]
        assert batch_outcome(ours, batch) == batch_outcome(ref, batch)


def pair_of(path: Path) -> tuple[Tokenizer, UnigramTokenizer]:
    """tokenizers' Tokenizer and ours for one tokenizer.json."""
    ours = UnigramTokenizer.from_json(path.read_text(encoding="utf-8"))
    assert ours is not None, f"{path} should load as a compact Unigram tokenizer"
    ref = Tokenizer.from_file(str(path))
    ref.no_padding()
    return ref, ours


cached_pair = functools.cache(pair_of)  # the property test's examples share one pair


@pytest.mark.parametrize("role", ["reranker", "classifier"])
@pytest.mark.parametrize("max_length", [512, 25])
def test_tiny_unigram_tokenizers_encode_like_tokenizers(
    tiny_models: dict[str, Path], role: str, max_length: int
) -> None:
    ref, ours = pair_of(tiny_models[role] / "tokenizer.json")
    assert_same(ref, ours, corpus(150, seed=1), max_length)


@pytest.mark.parametrize("max_length", [512, 25])
def test_xlmr_tokenizer_encodes_like_tokenizers(max_length: int) -> None:
    """bge-reranker-base's vocabulary: 250,002 pieces, a precompiled charsmap, unknown characters."""
    ref, ours = pair_of(xlmr_tokenizer_json())
    assert ours.token_to_id("<mask>") == ref.token_to_id("<mask>") == 250001
    assert ours.token_to_id("▁de") == ref.token_to_id("▁de")
    assert_same(ref, ours, corpus(400, seed=2), max_length)


def test_t5_tokenizer_encodes_like_tokenizers() -> None:
    """flan-t5-small's vocabulary: 32,000 pieces and 100 sentinel tokens found inside the text."""
    ref, ours = pair_of(t5_tokenizer_json())
    assert ours.token_to_id("<extra_id_0>") == ref.token_to_id("<extra_id_0>") == 32099
    assert_same(ref, ours, [*corpus(300, seed=4), "a<extra_id_7>b <extra_id_99></s>"], 512)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.text(max_size=60), second=st.text(max_size=60))
def test_any_text_encodes_like_tokenizers(tiny_models: dict[str, Path], first: str, second: str) -> None:
    ref, ours = cached_pair(tiny_models["reranker"] / "tokenizer.json")
    assert_same(ref, ours, [first, second], 16)


def test_every_short_text_over_a_hand_made_vocabulary_encodes_like_tokenizers() -> None:
    """Characters with no piece of their own inside pieces that have them, equal scores, runs of
    unknown characters, and an unknown character that beats two pieces only by its penalty ("he":
    "▁h" + unknown "e" scores 0 + (-9 - 10), "▁" + "he" -18): every text of up to five characters
    over "abcdhe " (19,608 texts)."""
    from tokenizers import models, pre_tokenizers

    vocab = [("<unk>", 0.0), ("a", -1.0), ("ab", -2.0), ("c", -1.0), ("bc", -1.5), ("▁", -9.0)]
    vocab += [("▁a", -1.5), ("cab", -2.5), ("abc", -3.0), ("ca", -2.0), ("▁d", -9.0), ("dd", -0.1)]
    vocab += [("▁h", 0.0), ("he", -9.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    ours = UnigramTokenizer.from_json(tok.to_str())
    assert ours is not None
    texts = [""]
    for _ in range(5):
        texts += [t + c for t in texts if len(t) == len(texts[-1]) for c in "abcdhe "]
    assert len(texts) == 19_608
    for text in texts:
        assert ours.encode(text).ids == tok.encode(text).ids, text


def test_a_piece_listed_twice_counts_with_its_last_id_as_in_tokenizers() -> None:
    from tokenizers import models, pre_tokenizers

    vocab = [("<unk>", 0.0), ("a", -1.0), ("ab", -2.0), ("b", -1.0), ("ab", -0.5), ("▁", -1.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    ours = UnigramTokenizer.from_json(tok.to_str())
    assert ours is not None
    assert ours.token_to_id("ab") == tok.token_to_id("ab") == 4
    for text in ["ab", "a b", "abab", "ba ab", "bab a"]:
        assert ours.encode(text).ids == tok.encode(text).ids, text


def test_pieces_that_differ_only_in_trailing_nul_characters_stay_apart() -> None:
    """Fixed-width byte strings compare as if their trailing NULs were padding: each byte length
    has its own array, so "a", "a\\0" and "a\\0\\0" are three pieces, as in tokenizers."""
    from tokenizers import models, pre_tokenizers

    vocab = [
        ("<unk>", 0.0),
        ("a", -3.0),
        ("a\0", -1.0),
        ("a\0\0", -0.5),
        ("\0", -4.0),
        ("▁", -1.0),
        ("▁a", -2.0),
    ]
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    ours = UnigramTokenizer.from_json(tok.to_str())
    assert ours is not None
    for piece in ("a", "a\0", "a\0\0", "\0", "\0\0", "a\0\0\0"):
        assert ours.token_to_id(piece) == tok.token_to_id(piece), repr(piece)
    for text in ["a", "a\0", "a\0\0", "\0a", "a\0a\0\0\0", "\0\0\0", "b\0", "a \0a"]:
        assert ours.encode(text).ids == tok.encode(text).ids, repr(text)


def test_added_tokens_that_strip_whitespace_match_tokenizers(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    """XLM-R's hub files give <mask> lstrip: the whitespace before it goes with it."""
    spec = json.loads((tiny_models["reranker"] / "tokenizer.json").read_text(encoding="utf-8"))
    for token in spec["added_tokens"]:
        if token["content"] == "<mask>":
            token["lstrip"] = True
        if token["content"] == "</s>":
            token["rstrip"] = True
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    ref, ours = pair_of(path)
    texts = ["a <mask> b", "a\t\u3000<mask>", "x </s>  y", " <mask></s> ", "<mask>  </s>\n z"]
    assert_same(ref, ours, texts + corpus(30, seed=3), 512)


def variant(tiny_models: dict[str, Path], change: Callable[[dict[str, Any]], None]) -> str:
    spec = json.loads((tiny_models["reranker"] / "tokenizer.json").read_text(encoding="utf-8"))
    change(spec)
    return json.dumps(spec)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value

    return change


@pytest.mark.parametrize(
    "change",
    [
        _set("model.byte_fallback", True),
        _set("added_tokens.4.normalized", True),
        _set("added_tokens.4.single_word", True),
        _set("pre_tokenizer.pretokenizers.1.prepend_scheme", "first"),
        _set("post_processor", {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True}),
    ],
    ids=[
        "byte fallback",
        "normalized added token",
        "single-word added token",
        "prepend first",
        "byte level",
    ],
)
def test_settings_not_followed_exactly_load_with_tokenizers(
    tiny_models: dict[str, Path], tmp_path: Path, change: Callable[[dict[str, Any]], None]
) -> None:
    text = variant(tiny_models, change)
    assert UnigramTokenizer.from_json(text) is None
    (tmp_path / "tokenizer.json").write_text(text, encoding="utf-8")
    assert isinstance(load_tokenizer(tmp_path, 512), Tokenizer)


def test_load_tokenizer_picks_the_compact_one_for_unigram_models_only(tiny_models: dict[str, Path]) -> None:
    assert isinstance(load_tokenizer(tiny_models["reranker"], 512), UnigramTokenizer)
    assert isinstance(load_tokenizer(tiny_models["classifier"], 512), UnigramTokenizer)
    assert isinstance(load_tokenizer(minilm_model_dir(), 256), Tokenizer)  # WordPiece


RSS_SCRIPT = """
import sys
from pathlib import Path
def rss():
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) * 1024
import tokenizers, homeiq_addon.models.unigram as unigram
from homeiq_addon.models import runtime
path = sys.argv[1]
before = rss()
if sys.argv[2] == "compact":
    tok = unigram.UnigramTokenizer.from_json(Path(path).read_text(encoding="utf-8"))
else:
    tok = tokenizers.Tokenizer.from_file(path)
tok.encode("Bedroom light turns on around 07:00 on weekdays", "Which would make a useful automation?")
runtime.release_free_heap()  # as the add-on does after loading
print(rss() - before)
"""


def test_xlmr_tokenizer_takes_a_fraction_of_tokenizers_memory() -> None:
    """Each in a fresh process: tokenizers' Unigram trie holds XLM-R's vocabulary in ~275 MB of
    RSS; the compact one in ~15 MB once the heap that parsing freed is released (this machine)."""
    grown = {}
    for kind in ("compact", "tokenizers"):
        run = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT, str(xlmr_tokenizer_json()), kind],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(Path(unigram.__file__).parents[2])},
        )
        grown[kind] = int(run.stdout.strip())
    assert grown["compact"] < 0.25 * grown["tokenizers"], grown
    assert grown["compact"] < 50 * 2**20, grown
