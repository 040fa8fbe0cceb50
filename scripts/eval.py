"""`make eval`: every candidate ranking on every evaluation set, one table (not a test).

Rows, each measured by `lookalike eval` on the same manifest and store:
  phash                     64-bit DCT perceptual hash, Hamming distance (the baseline)
  efficientnet-lite0        the default network, mean pooling
  efficientnet-lite0-gem    the same network, GeM pooling
  efficientnet-lite0[-gem]-int8  both, quantised to 8 bits (tools/quantize_model.py)
  efficientnet-lite0 + PCA-whitening learned on the gallery
  sscd, sscd-distilled      copy-detection models (with query crops, their default; and sscd without)
  efficientnet-lite0 + sscd-distilled fused (mean of cosine similarities)
  sscd, then phash          a cascade: SSCD ranks, pHash lifts the pairs it is sure are copies
and the Python reference pipeline (Pillow + onnxruntime, exact numpy ranking, the measures
re-implemented here in numpy) as the peer that shows the Swift engine loses nothing.

    python scripts/eval.py --lookalike .build/release/lookalike [--data .data/eval] [--sets copies,categories,emoji]

Writes bench-results/eval-DATE.{json,md} and charts (per-edit Recall@1, copy-detection
precision-recall) as PNG. The stores under DATA/stores keep every model's vectors, so a second
run embeds nothing again.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import reference_pipeline  # noqa: E402

ROWS = [
    ("phash", ["--model", "phash"]),
    ("efficientnet-lite0", ["--model", "efficientnet-lite0"]),
    ("efficientnet-lite0-gem", ["--model", "efficientnet-lite0-gem"]),
    ("efficientnet-lite0-int8", ["--model", "efficientnet-lite0-int8"]),
    ("efficientnet-lite0-gem-int8", ["--model", "efficientnet-lite0-gem-int8"]),
    ("efficientnet-lite0, whitened", ["--model", "efficientnet-lite0", "--whiten"]),
    ("sscd", ["--model", "sscd"]),
    ("sscd, no crops", ["--model", "sscd", "--no-crops"]),
    ("sscd-distilled", ["--model", "sscd-distilled"]),
    ("efficientnet-lite0 + sscd-distilled", ["--model", "efficientnet-lite0", "--model", "sscd-distilled"]),
    ("sscd, then phash", ["--model", "sscd", "--model", "phash", "--fusion", "cascade"]),
    # Ranking stages on the default model (docs/QUALITY.md, "Ranking stages").
    ("efficientnet-lite0-gem, expansion 1", ["--model", "efficientnet-lite0-gem", "--expand", "1"]),
    ("efficientnet-lite0-gem, expansion 2", ["--model", "efficientnet-lite0-gem", "--expand", "2"]),
    ("efficientnet-lite0-gem, augmentation 2", ["--model", "efficientnet-lite0-gem", "--augment", "2"]),
    ("efficientnet-lite0-gem, after one round of feedback", ["--model", "efficientnet-lite0-gem", "--feedback"]),
    ("efficientnet-lite0-gem, top 10", ["--model", "efficientnet-lite0-gem", "--top", "10"]),
    ("efficientnet-lite0-gem, top 10, diversity 0.7", ["--model", "efficientnet-lite0-gem", "--top", "10", "--diversity", "0.7"]),
    ("efficientnet-lite0-gem, top 10, diversity 0.5", ["--model", "efficientnet-lite0-gem", "--top", "10", "--diversity", "0.5"]),
]
PEER = "python reference (efficientnet-lite0)"
# Sets measured with a few rows only (no peer): the regions set asks whether a part of a photo
# finds the photo, a baseline for tiles.
SET_ROWS = {"regions": {"efficientnet-lite0-gem", "sscd", "efficientnet-lite0-gem, expansion 2"},
            # Framed and chained copies: the copy detectors, with and without query crops.
            "framed": {"efficientnet-lite0-gem", "sscd", "sscd, no crops", "sscd-distilled", "sscd, then phash"}}
# Rankings compared query by query: (challenger, incumbent).
PAIRS = [("efficientnet-lite0-gem", "efficientnet-lite0"),
         ("efficientnet-lite0-int8", "efficientnet-lite0"), ("efficientnet-lite0-gem-int8", "efficientnet-lite0-gem"), ("sscd-distilled", "sscd"), ("sscd, then phash", "sscd"), ("sscd", "sscd, no crops"),
         ("efficientnet-lite0-gem, expansion 1", "efficientnet-lite0-gem"),
         ("efficientnet-lite0-gem, expansion 2", "efficientnet-lite0-gem"),
         ("efficientnet-lite0-gem, augmentation 2", "efficientnet-lite0-gem"),
         ("efficientnet-lite0-gem, top 10, diversity 0.7", "efficientnet-lite0-gem, top 10")]
COLUMNS = [("mAP", "map"), ("mAP@R", "map_at_r"), ("P@1", "precision_at_1"), ("P@10", "precision_at_10"),
           ("R@1", "recall_at_1"), ("R@10", "recall_at_10"), ("R@100", "recall_at_100")]


def run_row(lookalike: str, manifest: Path, store: Path, arguments: list[str], top: int) -> dict:
    command = [lookalike, "eval", str(manifest), "--json", "--top", str(top), "--store", str(store), *arguments]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    row = json.loads(result.stdout)
    row["wall_seconds"] = time.perf_counter() - started
    return row


# ---- The Python peer: its own embedding pipeline, exact ranking and measures.

def read_manifest(path: Path) -> list[dict]:
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            entry["path"] = str((path.parent / entry["path"]).resolve())
            entries.append(entry)
    return entries


def peer_embeddings(paths: list[str], model: Path) -> dict[str, np.ndarray]:
    session = reference_pipeline.open_session(model, 2, "embedding")
    vectors = {}
    for path in paths:
        prepared = reference_pipeline.try_preprocess(Path(path), 224, 896)
        if prepared is not None:
            vectors[path] = reference_pipeline.embed(session, prepared[0], "embedding")
    return vectors


def peer_measures(rankings: list[tuple[list[tuple[str, float]], set[str]]]) -> dict:
    judged = [(hits, relevant) for hits, relevant in rankings if relevant]

    def mean(values) -> float:
        return float(np.mean(values)) if len(values) else 0.0

    def average_precision(hits, relevant, cut=None):
        found, total = 0, 0.0
        for rank, (item, _) in enumerate(hits[:cut] if cut else hits):
            if item in relevant:
                found += 1
                total += found / (rank + 1)
        return total / len(relevant)

    out = {
        "queries": len(judged), "queries_without_match": len(rankings) - len(judged),
        "map": mean([average_precision(h, r) for h, r in judged]),
        "map_at_r": mean([average_precision(h, r, len(r)) for h, r in judged]),
        "precision_at_1": mean([sum(i in r for i, _ in h[:1]) / 1 for h, r in judged]),
        "precision_at_10": mean([sum(i in r for i, _ in h[:10]) / 10 for h, r in judged]),
    }
    for k in (1, 10, 100):
        out[f"recall_at_{k}"] = mean([any(i in r for i, _ in h[:k]) for h, r in judged])
    pairs = sorted(((score, item in relevant) for hits, relevant in rankings for item, score in hits),
                   key=lambda pair: (-pair[0], pair[1]))  # ties: wrong pairs first
    positives = sum(len(relevant) for _, relevant in rankings)
    correct, area = 0, 0.0
    for position, (_, right) in enumerate(pairs):
        if right:
            correct += 1
            area += correct / (position + 1) / max(1, positives)
    out["pairs"] = {"micro_average_precision": area, "positives": positives, "pairs": len(pairs)}
    return {key: float(value) if isinstance(value, np.floating) else value for key, value in out.items()}


def run_peer(manifest: Path, model: Path, top: int) -> dict:
    started = time.perf_counter()
    entries = read_manifest(manifest)
    indexed = [e for e in entries if e["role"] != "query"]
    queries = [e for e in entries if e["role"] == "query"]
    vectors = peer_embeddings(sorted({e["path"] for e in entries}), model)
    # Items are files here (the engine merges identical bytes; the sets have none).
    ids = sorted({e["path"] for e in indexed if e["path"] in vectors})
    matrix = np.stack([vectors[i] for i in ids]).astype(np.float32)
    gallery_by_group: dict[str, set[str]] = {}
    for e in indexed:
        if e["role"] == "gallery" and e["path"] in vectors:
            gallery_by_group.setdefault(e["group"], set()).add(e["path"])
    rankings, kinds = [], []
    for query in queries:
        relevant = gallery_by_group.get(query["group"], set())
        hits = []
        if query["path"] in vectors:
            scores = matrix @ vectors[query["path"]].astype(np.float32)
            best = np.argsort(-scores, kind="stable")[:top]
            hits = [(ids[i], float(scores[i])) for i in best]
        rankings.append((hits, relevant))
        kinds.append(query.get("kind"))
    by_kind = {kind: peer_measures([r for r, k in zip(rankings, kinds) if k == kind])
               for kind in sorted({k for k in kinds if k})}
    return {"model": PEER, "overall": peer_measures(rankings), "by_kind": by_kind,
            "failures": [p for p in {e["path"] for e in entries} if p not in vectors],
            "wall_seconds": time.perf_counter() - started}


# ---- Reporting

def table(set_name: str, results: dict[str, dict]) -> str:
    lines = [f"### {set_name}", "",
             "| ranking | " + " | ".join(name for name, _ in COLUMNS) + " | µAP | R@P90 | threshold at P99 | groups in first 10 |",
             "|---|" + "---|" * (len(COLUMNS) + 4)]
    for name, result in results.items():
        overall = result["overall"]
        pairs = overall["pairs"]
        threshold = pairs.get("threshold_at_precision_0.99")
        cells = [f"{overall[key]:.3f}" for _, key in COLUMNS]
        cells.append(f"{pairs['micro_average_precision']:.3f}")
        cells.append(f"{pairs['recall_at_precision_0.9']:.3f}" if "recall_at_precision_0.9" in pairs else "")
        cells.append(f"{threshold['score']:.3f} (R {threshold['recall']:.2f})" if threshold else ("none" if "curve" in pairs else ""))
        cells.append(f"{result['distinct_groups_at_10']:.2f}" if "distinct_groups_at_10" in result else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    first = next(iter(results.values()))
    lines += ["", f"{first['overall']['queries']} queries with a match, {first['overall']['queries_without_match']} without; "
                  f"gallery {first.get('gallery', '?')}, distractors {first.get('distractors', '?')}."]
    return "\n".join(lines)


def by_kind(result: dict, kind: str, measure: str) -> float | None:
    values = result.get("by_kind", {}).get(kind)
    if values is None:
        return None
    return values["pairs"]["micro_average_precision"] if measure == "µAP" else values[measure]


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven if either ranking
    were as likely as the other to win a query they disagree on."""
    n = wins + losses
    if n == 0:
        return 1.0
    low = min(wins, losses)
    tail = sum(math.comb(n, k) for k in range(low + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(challenger: dict, incumbent: dict) -> dict | None:
    """Per-query differences between two rankings of the same queries (those with a match): the
    mean difference in average precision with a bootstrap 95% interval, and the queries each one
    alone answers correctly at rank 1, with the sign test on those."""
    if "queries" not in challenger or "queries" not in incumbent:
        return None
    theirs = {q["path"]: q for q in incumbent["queries"] if q["match"]}
    both = [(q, theirs[q["path"]]) for q in challenger["queries"] if q["match"] and q["path"] in theirs]
    if not both:
        return None
    difference = np.array([a["ap"] - b["ap"] for a, b in both])
    rng = np.random.default_rng(2026)
    means = difference[rng.integers(0, len(difference), (10_000, len(difference)))].mean(axis=1)
    wins = sum(a["first_correct_rank"] == 1 and b["first_correct_rank"] != 1 for a, b in both)
    losses = sum(b["first_correct_rank"] == 1 and a["first_correct_rank"] != 1 for a, b in both)
    return {"queries": len(both), "ap_difference": float(difference.mean()),
            "ap_difference_95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))],
            "top1_wins": int(wins), "top1_losses": int(losses), "sign_test_p": sign_test(wins, losses)}


def paired_table(set_name: str, results: dict[str, dict]) -> str:
    lines = ["| challenger vs incumbent | queries | AP difference (95% interval) | right at rank 1 only: challenger / incumbent | sign test p |",
             "|---|---|---|---|---|"]
    for challenger, incumbent in PAIRS:
        if challenger in results and incumbent in results:
            comparison = paired(results[challenger], results[incumbent])
            if comparison:
                results[challenger].setdefault("paired", {})[incumbent] = comparison
                low, high = comparison["ap_difference_95"]
                lines.append(f"| {challenger} vs {incumbent} | {comparison['queries']} | "
                             f"{comparison['ap_difference']:+.3f} ({low:+.3f} to {high:+.3f}) | "
                             f"{comparison['top1_wins']} / {comparison['top1_losses']} | {comparison['sign_test_p']:.3g} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def negatives(results: dict[str, dict]) -> bool:
    """Whether the set has queries without a match: only then does a kind's µAP say something
    a per-query measure does not (how its copies of unknown photos score against the gallery)."""
    return any(result["overall"]["queries_without_match"] for result in results.values())


def kind_table(results: dict[str, dict], measure: str) -> str:
    kinds = sorted({k for r in results.values() for k in r.get("by_kind", {})})
    lines = ["| ranking | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name, result in results.items():
        values = [by_kind(result, k, measure) for k in kinds]
        lines.append(f"| {name} | " + " | ".join("" if v is None else f"{v:.2f}" for v in values) + " |")
    return "\n".join(lines)


def charts(set_name: str, results: dict[str, dict], folder: Path, stem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, result in results.items():
        curve = result["overall"]["pairs"].get("curve")
        if curve:
            axes.plot([p["recall"] for p in curve], [p["precision"] for p in curve], label=name)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title(f"{set_name}: all (query, hit) pairs ranked by score")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    path = folder / f"{stem}-{set_name}-pr.png"
    figure.savefig(path, dpi=120)
    written.append(path)
    plt.close(figure)

    kinds = sorted({k for r in results.values() for k in r.get("by_kind", {})})
    measures = [("recall_at_1", "Recall@1", "by-kind")] + ([("µAP", "µAP", "by-kind-uap")] if negatives(results) else [])
    for measure, label, suffix in measures:
        if not kinds:
            break
        figure, axes = plt.subplots(figsize=(max(7, len(kinds) * 0.8), 5.5))
        width = 0.8 / max(1, len(results))
        for offset, (name, result) in enumerate(results.items()):
            values = [by_kind(result, k, measure) or 0 for k in kinds]
            axes.bar(np.arange(len(kinds)) + offset * width, values, width, label=name)
        axes.set_xticks(np.arange(len(kinds)) + 0.4 - width / 2)
        axes.set_xticklabels(kinds, rotation=45, ha="right", fontsize=8)
        axes.set_ylabel(label)
        axes.set_title(f"{set_name}: {label} by kind of query")
        axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, frameon=False)
        figure.tight_layout()
        path = folder / f"{stem}-{set_name}-{suffix}.png"
        figure.savefig(path, dpi=120)
        written.append(path)
        plt.close(figure)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookalike", required=True)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data")) / "eval")
    parser.add_argument("--sets", default="copies,categories,emoji,regions,framed")
    parser.add_argument("--rows", default="", help="comma-separated row names to run (default: all)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--top", type=int, default=100)
    args = parser.parse_args()
    models = Path(os.environ.get("LOOKALIKE_MODELS", Path.home() / ".cache/lookalike/models"))
    wanted = {r.strip() for r in args.rows.split(",") if r.strip()}
    day = datetime.date.today().isoformat()
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    stem = f"eval-{day}"
    everything, sections = {}, []
    for set_name in [s for s in args.sets.split(",") if s]:
        manifest = args.data / set_name / "manifest.jsonl"
        if not manifest.exists():
            raise SystemExit(f"{manifest} is missing: run `make eval-data`")
        # One store per manifest content: a store that also held images of an earlier version of
        # the set would answer with them too.
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]
        store = args.data / "stores" / f"{set_name}-{digest}"
        results = {}
        for name, arguments in ROWS:
            if wanted and name not in wanted:
                continue
            if set_name in SET_ROWS and name not in SET_ROWS[set_name]:
                continue
            print(f"[{set_name}] {name}", flush=True)
            results[name] = run_row(args.lookalike, manifest, store, arguments, args.top)
        if not args.no_peer and set_name not in SET_ROWS:
            print(f"[{set_name}] {PEER}", flush=True)
            results[PEER] = run_peer(manifest, models / "efficientnet-lite0.onnx", args.top)
        everything[set_name] = results
        sections.append(table(set_name, results))
        sections.append("Recall@1 by kind of query:\n\n" + kind_table(results, "recall_at_1"))
        comparisons = paired_table(set_name, results)
        if comparisons:
            sections.append("Query by query:\n\n" + comparisons)
        if negatives(results):
            sections.append("µAP by kind of query (its negative queries included):\n\n" + kind_table(results, "µAP"))
        for path in charts(set_name, results, out, stem):
            sections.append(f"chart: {path.relative_to(ROOT)}")
        (out / f"{stem}.json").write_text(json.dumps(everything, indent=1) + "\n")
    text = "\n\n".join(sections)
    (out / f"{stem}.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
