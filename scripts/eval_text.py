#!/usr/bin/env python3
"""Text-to-image quality: words against pictures whose names are known, on sets built from packages.

Two sets, made from the image sets of ``scripts/eval_sets.py`` (``make eval-data``):

* ``emoji/text.jsonl``: every emoji picture of the emoji set (five drawing styles of each
  concept) is the gallery; each concept is searched with its Unicode character name, lower-cased
  ("face with tears of joy"), from Python's ``unicodedata``; the concept's pictures are correct.
* ``categories/text.jsonl``: every Fashion-MNIST image of the categories set is the gallery; each
  of the ten classes is searched with its name ("ankle boot"); the class's images are correct.

Rankings:

* ``words`` with the class words of ``tools/imagenet_words.py --words V`` (``name``,
  ``synonyms``, ``hypernyms``, ``both``) and the ``T`` most probable classes mixed (1, 3, 10, 30 for
  the names; 10 for the others): ``lookalike eval --model words-V-T`` in a models folder of its own
  (links to the installed files, and a JSON manifest of ``words`` with that class file and T),
  every query through ``search`` in words, as a user's;
* ``literal``: the baseline the words model must beat: each image is described by its ten most
  probable ImageNet class names (EfficientNet-Lite0 here in Python, through the reference
  pipeline's preprocessing), and scored by the probability mass of the classes whose names share
  a word with the query (lower-cased, split on non-letters; ties keep the gallery order).

The class words are chosen on half of the emoji queries (the even ones, in manifest order) and
reported on the other half and on the categories set, which plays no part in the choice.

Usage::

    python scripts/eval_text.py --lookalike .build/release/lookalike --data .data/eval [--json OUT.json]

The script prints the variant its rule picks; docs/QUALITY.md says which one ``words`` ships, and why.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import reference_pipeline  # noqa: E402

TOP_CLASSES = 10
WORD = re.compile(r"[a-z]+")


def build_sets(data: Path) -> dict[str, Path]:
    """The text manifests, written beside the image sets' own."""
    manifests = {}
    emoji = [json.loads(line) for line in (data / "emoji" / "manifest.jsonl").read_text().splitlines() if line.strip()]
    lines, named = [], set()
    for entry in emoji:
        lines.append({"path": entry["path"], "role": "gallery", "group": entry["group"]})
        if entry["group"] in named:
            continue
        codepoint = int(entry["group"][2:], 16)
        name = unicodedata.name(chr(codepoint), "")
        if name:
            named.add(entry["group"])
            lines.append({"text": name.lower(), "role": "query", "group": entry["group"]})
    manifests["emoji"] = write(data / "emoji" / "text.jsonl", lines)

    categories = [json.loads(line) for line in (data / "categories" / "manifest.jsonl").read_text().splitlines() if line.strip()]
    lines = [{"path": entry["path"], "role": "gallery", "group": entry["group"]} for entry in categories]
    for group in sorted({entry["group"] for entry in categories}):
        lines.append({"text": group.replace("-", " ") if group != "t-shirt" else "t-shirt", "role": "query", "group": group})
    manifests["categories"] = write(data / "categories" / "text.jsonl", lines)
    return manifests


def write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


# (class words, how many of the most probable classes are mixed): the shipped words is ("name", 10).
VARIANTS = [("name", 1), ("name", 3), ("name", 10), ("name", 30), ("synonyms", 10), ("hypernyms", 10), ("both", 10)]
ROOT = Path(__file__).resolve().parent.parent


def variant_models(models: Path, folder: Path, variant: str, top: int) -> Path:
    """A models folder where `words-<variant>-<top>` is `words` with that variant's class words, mixing `top` classes."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in models.iterdir():
        link = folder / item.name
        if not link.exists() and not item.name.endswith(".json"):
            link.symlink_to(item)
    classes = folder / f"imagenet-classes-{variant}.txt"
    subprocess.run([sys.executable, str(ROOT / "tools" / "imagenet_words.py"), "--classes", str(ROOT / "tools" / "imagenet-classes.txt"),
                    "--vocabulary", str(models / "minilm-l6.vocab.txt"), "--words", variant, "--output", str(classes)], check=True)
    builtin = subprocess.run([LOOKALIKE[0], "models", "--json"], capture_output=True, text=True, check=True)
    assert any(model["name"] == "words" for model in json.loads(builtin.stdout)["models"])
    manifest = {
        "name": f"words-{variant}-{top}", "summary": f"words with class words: {variant}, top {top}", "file": "efficientnet-lite0.onnx",
        "space": "minilm-l6", "input": {"name": "image", "layout": "NHWC", "dtype": "uint8"},
        "resize": {"shorterSide": {"size": 224, "maxLonger": 896}},
        "concepts": {"classes": classes.name, "textModel": "minilm-l6", "top": top},
        "normalization": "as words", "embeddingOutput": "logits", "dimension": 384, "batchable": True,
        "licence": "as words", "installHint": "make setup",
    }
    (folder / f"words-{variant}-{top}.json").write_text(json.dumps(manifest))
    return folder


LOOKALIKE: list[str] = []


def run_words(lookalike: str, manifest: Path, store: Path, model: str, models: Path) -> dict:
    command = [lookalike, "eval", str(manifest), "--model", model, "--json", "--top", "100", "--store", str(store)]
    environment = dict(os.environ, LOOKALIKE_MODELS=str(models))
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def measures(outcomes: list[dict]) -> dict:
    """R@1, R@10 and mAP over per-query outcomes (first correct rank, AP)."""
    n = max(1, len(outcomes))
    ranks = [outcome["first_correct_rank"] for outcome in outcomes]
    return {"queries": len(outcomes), "recall_at_1": sum(r == 1 for r in ranks if r) / n,
            "recall_at_10": sum(r <= 10 for r in ranks if r) / n, "map": sum(outcome["ap"] for outcome in outcomes) / n}


def class_names(models: Path) -> list[str]:
    return [line.strip() for line in (models / "imagenet-classes.txt").read_text().splitlines() if line.strip()]


def literal_baseline(manifest: Path, models: Path) -> dict:
    """Per query, as eval reports it: the first correct rank and AP (of the first 100), matching
    query words to the images' top ImageNet class names."""
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    gallery = [entry for entry in entries if entry["role"] == "gallery"]
    queries = [entry for entry in entries if entry["role"] == "query"]
    names = [set(WORD.findall(name.lower())) for name in class_names(models)]
    session = reference_pipeline.open_session(models / "efficientnet-lite0.onnx", 2, "logits")
    tops = []
    for entry in gallery:
        pixels, _ = reference_pipeline.preprocess(manifest.parent / entry["path"], 224, 896)
        logits = session.run(["logits"], {"image": pixels})[0][0].astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        best = np.argsort(-probabilities)[:TOP_CLASSES]
        tops.append([(int(c), float(probabilities[c])) for c in best])
    outcomes = []
    for query in queries:
        words = set(WORD.findall(query["text"]))
        scores = np.array([sum(p for c, p in top if names[c] & words) for top in tops])
        order = np.argsort(-scores, kind="stable")
        relevant = np.array([gallery[i]["group"] == query["group"] for i in order])[:100]  # as eval --top 100
        total = sum(entry["group"] == query["group"] for entry in gallery)
        precision = np.cumsum(relevant) / np.arange(1, len(relevant) + 1)
        first = int(np.argmax(relevant)) + 1 if relevant.any() else None
        outcomes.append({"first_correct_rank": first, "ap": float((precision * relevant).sum() / max(1, total))})
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookalike", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=Path(os.environ.get(
        "LOOKALIKE_MODELS", Path.home() / ".cache" / "lookalike" / "models")))
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    LOOKALIKE.append(arguments.lookalike)
    sets = build_sets(arguments.data)
    outcomes: dict[str, dict[str, list[dict]]] = {}
    for name, manifest in sets.items():
        outcomes[name] = {"literal": literal_baseline(manifest, arguments.models)}
        for variant, top in VARIANTS:
            models = variant_models(arguments.models, arguments.data / "stores" / "text-models" / variant, variant, top)
            result = run_words(arguments.lookalike, manifest, arguments.data / "stores" / f"words-{variant}-{top}-{name}",
                               f"words-{variant}-{top}", models)
            outcomes[name][f"words, {variant}, top {top}"] = result["queries"]
    # The choice: best mAP on the even emoji queries; reported on the odd ones and on categories.
    fit = {ranking: measures(rows[0::2]) for ranking, rows in outcomes["emoji"].items()}
    chosen = max((r for r in fit if r.startswith("words")), key=lambda r: fit[r]["map"])
    report = {"emoji (fit half)": fit,
              "emoji (report half)": {r: measures(rows[1::2]) for r, rows in outcomes["emoji"].items()},
              "categories": {r: measures(rows) for r, rows in outcomes["categories"].items()}}
    print(f"{'part':<22}{'ranking':<30}{'queries':>8}{'R@1':>8}{'R@10':>8}{'mAP':>8}")
    for part, rows in report.items():
        for ranking, row in rows.items():
            mark = " *" if ranking == chosen else ""
            print(f"{part:<22}{ranking + mark:<30}{row['queries']:>8}{row['recall_at_1']:>8.3f}{row['recall_at_10']:>8.3f}{row['map']:>8.3f}")
    print(f"chosen on the fit half: {chosen}")
    if arguments.json:
        arguments.json.write_text(json.dumps({"chosen": chosen, "report": report}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
