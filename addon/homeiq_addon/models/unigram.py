"""Unigram tokenizers (XLM-R, T5) without the memory of ``tokenizers``' Unigram model.

``tokenizers`` keeps a Unigram vocabulary in a byte trie with a hash map in every node: XLM-R's
250,002 pieces (bge-reranker-base's tokenizer.json) take 275-296 MB of RSS once loaded, as much
as the INT8 reranker's own weights. Here the vocabulary is a few flat arrays (:class:`Vocabulary`),
about 15 MB once loaded (T5's 32,100 pieces: 9 MB instead of 31), and the Viterbi search is the one
``tokenizers`` runs: the same candidates (every piece that starts at each character), the same
tie-breaks (the first best path found wins) and the same unknown-character rule (a penalised
single character, consecutive ones fused into one unknown token).

Everything around the model comes from the same tokenizer.json: the normalizer and the
pre-tokenizer are ``tokenizers``' own objects, built from its JSON; special tokens found in the
text, the post-processing template and truncation follow ``tokenizers``' rules for the settings
handled here. :meth:`UnigramTokenizer.from_spec` returns None for anything else (byte fallback,
added tokens matched after normalization or only as whole words, a pre-tokenizer whose output
depends on where a segment starts, other post-processors): such a file loads as a plain
``tokenizers.Tokenizer``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

UNK_PENALTY = 10.0  # tokenizers' K_UNK_PENALTY: an unknown character scores the lowest piece minus this
WORD_CACHE = 50_000  # words whose pieces are remembered (pattern texts repeat the same few hundred)
# Rust's char::is_whitespace (Unicode White_Space), which tokenizers' lstrip/rstrip strip.
_WHITESPACE = "[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"

Template = tuple[int | str, ...]  # token ids, and "A" / "B" where the sequences go


@dataclass(frozen=True, slots=True)
class Encoded:
    """What the add-on reads of an encoding: its token ids."""

    ids: list[int]


class Vocabulary:
    """Pieces -> (id, score) in flat arrays: for each UTF-8 length, the pieces of that many bytes
    sorted in one fixed-width array with their ids beside it, and the scores by id. XLM-R's
    250,002 pieces take 5 MB (16 MB as one 48-byte-wide array, 36 MB as a dict of Python objects,
    whose memory stayed mixed with the parsed JSON's)."""

    def __init__(self, pieces: Sequence[tuple[str, float]]) -> None:
        """``pieces`` in id order; of two equal pieces the last one's id counts, as in tokenizers."""
        encoded = [piece.encode() for piece, _ in pieces]
        self._groups: dict[int, tuple[npt.NDArray[np.bytes_], npt.NDArray[np.int32]]] = {}
        for size, ids in _by_size(encoded).items():
            if not size:
                continue  # an empty piece matches nothing, in tokenizers too
            keys = np.array([encoded[i] for i in ids], dtype=f"S{size}")
            order = np.argsort(keys, kind="stable")  # equal pieces stay in id order
            keys = keys[order]
            last = np.ones(len(keys), dtype=bool)
            last[:-1] = keys[1:] != keys[:-1]  # the last of each run of equal pieces
            self._groups[size] = (keys[last], np.asarray(ids, dtype=np.int32)[order][last])
        self._scores = np.array([score for _, score in pieces], dtype=np.float64)
        self.min_score = float(self._scores.min()) if len(self._scores) else 0.0
        self.longest = max((len(piece) for piece, _ in pieces), default=1)  # in characters

    def id_of(self, piece: str) -> int | None:
        """The id of ``piece``, or None."""
        found = self._lookup([piece])
        return None if found[0] < 0 else int(found[0])

    def pieces_in(self, word: str) -> list[tuple[int, int, int, float]]:
        """Every piece found in ``word``: (start, end, id, score) in characters, ordered by start
        then end, as tokenizers' trie walk finds them."""
        spans = [
            (start, end)
            for start in range(len(word))
            for end in range(start + 1, min(len(word), start + self.longest) + 1)
        ]
        ids = self._lookup([word[a:b] for a, b in spans])
        hits = np.flatnonzero(ids >= 0)
        scores = self._scores[ids[hits]].tolist()
        return [(*spans[h], int(ids[h]), score) for h, score in zip(hits.tolist(), scores, strict=True)]

    def _lookup(self, pieces: list[str]) -> npt.NDArray[np.int64]:
        """Ids of ``pieces`` (-1 where there is none). Each is looked for among the pieces of its
        own byte length, so the fixed width never pads a piece (nor cuts one)."""
        encoded = [p.encode() for p in pieces]
        found = np.full(len(pieces), -1, dtype=np.int64)
        for size, at_size in _by_size(encoded).items():
            group = self._groups.get(size)
            if group is None:
                continue
            keys, ids = group
            wanted = np.array([encoded[i] for i in at_size], dtype=f"S{size}")
            at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            hit = keys[at] == wanted
            found[np.asarray(at_size)[hit]] = ids[at[hit]]
        return found


def _by_size(encoded: Sequence[bytes]) -> dict[int, list[int]]:
    """The indices of ``encoded``, by byte length."""
    sizes: dict[int, list[int]] = {}
    for index, data in enumerate(encoded):
        sizes.setdefault(len(data), []).append(index)
    return sizes


class UnigramTokenizer:
    """The part of ``tokenizers.Tokenizer``'s interface the add-on uses, for a Unigram model."""

    def __init__(
        self,
        pieces: Sequence[tuple[str, float]],
        *,
        unk_id: int | None,
        frame: Tokenizer,
        added: dict[str, tuple[int, bool, bool]],
        single: Template,
        pair: Template,
    ) -> None:
        """``pieces`` in id order; ``frame`` supplies the normalizer and pre-tokenizer; ``added``
        maps each added token to (id, lstrip, rstrip); the templates place the sequences among
        the special token ids."""
        self._vocab = Vocabulary(pieces)
        self._unk = unk_id
        self._unk_score = self._vocab.min_score - UNK_PENALTY
        normalizer, pre_tokenizer = frame.normalizer, frame.pre_tokenizer
        self._normalize: Callable[[str], str] = normalizer.normalize_str if normalizer else str
        self._split: Callable[[str], list[tuple[str, tuple[int, int]]]] = (
            pre_tokenizer.pre_tokenize_str if pre_tokenizer else lambda s: [(s, (0, len(s)))]
        )
        self._added_ids = {content: token_id for content, (token_id, _, _) in added.items()}
        self._added = _added_pattern(added)
        self._single, self._pair = single, pair
        self._max_length: int | None = None
        self._strategy = "longest_first"
        self._words: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_json(cls, text: str) -> UnigramTokenizer | None:
        """The compact tokenizer for a tokenizer.json's text, or None when it is not a Unigram
        model or uses a setting this class does not follow exactly."""
        spec = json.loads(text)
        return cls.from_spec(spec) if isinstance(spec, dict) else None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> UnigramTokenizer | None:
        """See :meth:`from_json`; ``spec`` is the parsed tokenizer.json."""
        model = spec.get("model") or {}
        if model.get("type") != "Unigram" or model.get("byte_fallback"):
            return None
        added: dict[str, tuple[int, bool, bool]] = {}
        for token in spec.get("added_tokens") or []:
            if token.get("normalized") or token.get("single_word"):
                return None  # matched in the normalized text, or only as a whole word: not followed here
            added[token["content"]] = (int(token["id"]), bool(token.get("lstrip")), bool(token.get("rstrip")))
        if _depends_on_position(spec.get("pre_tokenizer")):
            return None
        templates = _templates(spec.get("post_processor"))
        if templates is None:
            return None
        frame = Tokenizer.from_str(
            json.dumps(
                {
                    "version": "1.0",
                    "truncation": None,
                    "padding": None,
                    "added_tokens": [],
                    "normalizer": spec.get("normalizer"),
                    "pre_tokenizer": spec.get("pre_tokenizer"),
                    "post_processor": None,
                    "decoder": None,
                    "model": {"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"},
                }
            )
        )
        pieces = [(str(piece), float(score)) for piece, score in model.get("vocab") or []]
        unk_id = model.get("unk_id")
        single, pair = templates
        return cls(
            pieces,
            unk_id=None if unk_id is None else int(unk_id),
            frame=frame,
            added=added,
            single=single,
            pair=pair,
        )

    # The tokenizers.Tokenizer methods the add-on calls (loaded.TextTokenizer).

    def no_padding(self) -> None:
        """Padding is never on here (the add-on pads to its shape buckets)."""

    def enable_truncation(
        self, max_length: int, stride: int = 0, strategy: str = "longest_first", direction: str = "right"
    ) -> None:
        """Cut encodings to ``max_length`` tokens, special tokens included, as tokenizers does
        (``longest_first`` or ``only_second``, from the right, no stride)."""
        if strategy not in ("longest_first", "only_second") or stride or direction != "right":
            raise ValueError(f"truncation {strategy!r}, stride {stride}, {direction} is not supported")
        self._max_length, self._strategy = max_length, strategy

    def token_to_id(self, token: str) -> int | None:
        """The id of an added token or a piece, or None."""
        added = self._added_ids.get(token)
        return added if added is not None else self._vocab.id_of(token)

    def encode(
        self,
        sequence: str,
        pair: str | None = None,
        is_pretokenized: bool = False,
        add_special_tokens: bool = True,
    ) -> Encoded:
        """Token ids of a text, or of a text pair."""
        if is_pretokenized:
            raise ValueError("pre-tokenized input is not supported")
        second = None if pair is None else self._tokens(pair)
        return self._post_process(self._tokens(sequence), second, add_special_tokens)

    def encode_batch_fast(
        self,
        input: Sequence[str | tuple[str, str]],
        is_pretokenized: bool = False,
        add_special_tokens: bool = True,
    ) -> list[Encoded]:
        """:meth:`encode` for each text or (text, pair)."""
        out = []
        for item in input:
            sequence, pair = (item, None) if isinstance(item, str) else item
            out.append(self.encode(sequence, pair, is_pretokenized, add_special_tokens))
        return out

    # Tokenization.

    def _tokens(self, text: str) -> list[int]:
        """The model's token ids for ``text`` (special tokens in it kept whole), before the
        template and truncation."""
        out: list[int] = []
        start = 0
        # A substring test per token is much faster than the regex (T5 has 103 added tokens).
        if self._added is not None and any(content in text for content in self._added_ids):
            for match in self._added.finditer(text):
                self._segment(text[start : match.start()], out)
                out.append(self._added_ids[match.group(match.lastgroup or 0)])
                start = match.end()
        self._segment(text[start:], out)
        return out

    def _segment(self, text: str, out: list[int]) -> None:
        if not text:
            return
        for word, _ in self._split(self._normalize(text)):
            ids = self._words.get(word)
            if ids is None:
                ids = self._viterbi(word)
                if len(self._words) >= WORD_CACHE:
                    self._words.clear()
                self._words[word] = ids
            out.extend(ids)

    def _viterbi(self, word: str) -> tuple[int, ...]:
        """The best-scoring pieces of ``word``, as tokenizers' encode_optimized finds them."""
        size = len(word)
        if not size:
            return ()
        best = [0.0] * (size + 1)  # score of the best path ending at each position
        came = [-1] * (size + 1)  # where that path's last piece starts (-1: none yet)
        piece = [0] * (size + 1)  # that piece's id
        found = iter(self._vocab.pieces_in(word))  # (start, end, id, score), by start then end
        hit = next(found, None)
        for start in range(size):
            here = best[start]
            single = False
            while hit is not None and hit[0] == start:
                _, end, token_id, score = hit
                score += here
                if came[end] < 0 or score > best[end]:
                    best[end], came[end], piece[end] = score, start, token_id
                if end == start + 1:
                    single = True
                hit = next(found, None)
            if not single and self._unk is not None:
                score = self._unk_score + here
                if came[start + 1] < 0 or score > best[start + 1]:
                    best[start + 1], came[start + 1], piece[start + 1] = score, start, self._unk
        if came[size] < 0:
            raise ValueError(f"no pieces for {word!r} and the model has no unknown token")
        out: list[int] = []
        end = size
        while end > 0:  # consecutive unknown characters become one unknown token
            token_id = piece[end]
            if not (token_id == self._unk and out and out[-1] == self._unk):
                out.append(token_id)
            end = came[end]
        out.reverse()
        return tuple(out)

    # Template and truncation.

    def _post_process(self, first: list[int], second: list[int] | None, special: bool) -> Encoded:
        template = self._single if second is None else self._pair
        if self._max_length is not None:
            room = self._max_length - (sum(isinstance(t, int) for t in template) if special else 0)
            first, second = self._truncate(first, second, room)
        if not special:
            return Encoded(first + (second or []))
        ids: list[int] = []
        for item in template:
            if item == "A":
                ids.extend(first)
            elif item == "B":
                ids.extend(second or [])
            else:
                ids.append(int(item))
        return Encoded(ids)

    def _truncate(
        self, first: list[int], second: list[int] | None, room: int
    ) -> tuple[list[int], list[int] | None]:
        """tokenizers' truncate_encodings, from the right, without stride."""
        room = max(0, room)
        total = len(first) + len(second or [])
        if total <= room:
            return first, second
        if self._strategy == "only_second":
            if second is None:
                raise ValueError("Truncation error: Second sequence not provided")
            cut = total - room
            if len(second) <= cut:
                raise ValueError(
                    "Truncation error: Sequence to truncate too short to respect the provided max_length"
                )
            return first, second[: len(second) - cut]
        if second is None:
            return first[:room], None
        n1, n2 = len(first), len(second)
        swap = n1 > n2
        if swap:
            n1, n2 = n2, n1
        n2 = n1 if n1 > room else max(n1, room - n1)
        if n1 + n2 > room:
            n1 = room // 2
            n2 = n1 + room % 2
        if swap:
            n1, n2 = n2, n1
        return first[:n1], second[:n2]


def _added_pattern(added: dict[str, tuple[int, bool, bool]]) -> re.Pattern[str] | None:
    """One regex that finds the added tokens, longest first, with the whitespace their lstrip /
    rstrip absorb; the one named group that matched holds the token."""
    if not added:
        return None
    parts = []
    for n, content in enumerate(sorted(added, key=len, reverse=True)):
        _, lstrip, rstrip = added[content]
        left, right = (_WHITESPACE if lstrip else ""), (_WHITESPACE if rstrip else "")
        parts.append(f"{left}(?P<t{n}>{re.escape(content)}){right}")
    return re.compile("|".join(parts))


def _depends_on_position(pre_tokenizer: dict[str, Any] | None) -> bool:
    """True for a pre-tokenizer whose output depends on where a segment starts in the text
    (Metaspace prepending only to the first one): segments are pre-tokenized one by one here."""
    if not pre_tokenizer:
        return False
    if pre_tokenizer.get("type") == "Sequence":
        return any(_depends_on_position(p) for p in pre_tokenizer.get("pretokenizers") or [])
    return pre_tokenizer.get("type") == "Metaspace" and pre_tokenizer.get("prepend_scheme") == "first"


def _templates(processor: dict[str, Any] | None) -> tuple[Template, Template] | None:
    """The single and pair templates of a post-processor, or None for one not handled here."""
    if processor is None:
        return ("A",), ("A", "B")
    kind = processor.get("type")
    if kind == "TemplateProcessing":
        specials = processor.get("special_tokens") or {}

        def expand(items: list[dict[str, Any]]) -> Template:
            out: list[int | str] = []
            for item in items:
                if "Sequence" in item:
                    out.append(item["Sequence"]["id"])
                else:
                    out.extend(int(i) for i in specials[item["SpecialToken"]["id"]]["ids"])
            return tuple(out)

        return expand(processor.get("single") or []), expand(processor.get("pair") or [])
    if kind in ("RobertaProcessing", "BertProcessing"):
        cls_id, sep_id = int(processor["cls"][1]), int(processor["sep"][1])
        middle = (sep_id, sep_id) if kind == "RobertaProcessing" else (sep_id,)
        return (cls_id, "A", sep_id), (cls_id, "A", *middle, "B", sep_id)
    return None
