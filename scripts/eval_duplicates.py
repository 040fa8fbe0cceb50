"""Near-duplicate groups of a whole collection, measured (part of `make eval`; not a test).

Every image of the copies set (gallery photos, their edited copies, the edited copies of the
held-out photos, and the clip-art distractors) goes into one store; `lookalike duplicates` groups
them; each predicted pair (two members of one group) is right when both images come from the same
photo. Pair precision and recall, per model and threshold:

    python scripts/eval_duplicates.py --lookalike .build/release/lookalike [--data .data/eval] \
        [--models efficientnet-lite0-gem,sscd] [--thresholds 0.85,0.9]

Pairs between two distractors have no ground truth (Open Clip Art holds some variants of one
drawing): they are counted apart, not as errors. The first run embeds about 5,700 images per model
into DATA/stores/duplicates-DIGEST; later runs reuse the store.

The same store then shows what collapsing and diversifying do to a result list on a collection
with copies: every gallery photo asks "more like this" (`search --item`) for ten hits, plainly,
with `--collapse`, and with `--diversity`; reported are the different source photos among the ten
(each distractor counting as its own) and how many of the photo's own copies each list spends
ranks on.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval import read_manifest  # noqa: E402


def run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return result.stdout


def measure(groups: list[dict], group_of: dict[str, str | None], originals: set[str]) -> dict:
    """Pair precision and recall of predicted groups against the ids' true groups; also the
    recall of the pairs of a stored original and one of its copies alone (the pairs between two
    differently edited copies are harder)."""
    predicted_right = predicted_wrong = unjudged = original_pairs_found = 0
    for group in groups:
        members = [group["representative"]["id"]] + [copy["id"] for copy in group["copies"]]
        for a, b in itertools.combinations(members, 2):
            if (a in originals or b in originals) and group_of.get(a) is not None and group_of.get(a) == group_of.get(b):
                original_pairs_found += 1
            ga, gb = group_of.get(a), group_of.get(b)
            if ga is None and gb is None:
                unjudged += 1
            elif ga is not None and ga == gb:
                predicted_right += 1
            else:
                predicted_wrong += 1
    sizes: dict[str, int] = {}
    for group in group_of.values():
        if group is not None:
            sizes[group] = sizes.get(group, 0) + 1
    true_pairs = sum(n * (n - 1) // 2 for n in sizes.values())
    original_pairs = sum(sizes.get(group_of[o], 1) - 1 for o in originals if group_of.get(o) is not None)
    predicted = predicted_right + predicted_wrong
    return {
        "groups": len(groups),
        "pairs_predicted": predicted,
        "pairs_right": predicted_right,
        "pairs_between_distractors": unjudged,
        "pairs_true": true_pairs,
        "precision": predicted_right / predicted if predicted else 1.0,
        "recall": predicted_right / true_pairs if true_pairs else 0.0,
        "recall_original_copy_pairs": original_pairs_found / original_pairs if original_pairs else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookalike", required=True)
    parser.add_argument("--data", type=Path, default=Path(".data/eval"))
    parser.add_argument("--models", default="efficientnet-lite0-gem,sscd")
    parser.add_argument("--thresholds", default="", help="extra thresholds to try besides each model's calibrated one")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    manifest = args.data / "copies" / "manifest.jsonl"
    if not manifest.exists():
        raise SystemExit(f"{manifest} is missing: run `make eval-data`")
    entries = read_manifest(manifest)
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]
    store = args.data / "stores" / f"duplicates-{digest}"
    folders = sorted({str(Path(entry["path"]).parent) for entry in entries})
    store.parent.mkdir(parents=True, exist_ok=True)
    # The copy set's own evaluation store already holds the gallery's and distractors' vectors:
    # start from a copy of it, so only the queries are embedded here.
    evaluated = args.data / "stores" / f"copies-{digest}"
    if not store.exists() and evaluated.exists():
        shutil.copytree(evaluated, store)

    results = []
    for model in [m for m in args.models.split(",") if m]:
        print(f"[duplicates] adding {len(entries)} images with {model}", file=sys.stderr, flush=True)
        added = json.loads(run([args.lookalike, "add", "--store", str(store), "--model", model, "--json", "--recursive", *folders]))
        id_of: dict[str, str] = {}
        for item in added["added"]:
            id_of[str(Path(item["path"]).resolve())] = item["id"]
        for duplicate in added["duplicates"]:
            id_of[str(Path(duplicate["path"]).resolve())] = duplicate["existing_id"]
        # Identical bytes are one item: its true group is that of any of its paths with a group.
        group_of: dict[str, str | None] = {}
        for entry in entries:
            item = id_of.get(str(Path(entry["path"]).resolve()))
            if item is None:
                continue
            if group_of.get(item) is None:
                group_of[item] = entry.get("group")
        originals = {id_of[str(Path(e["path"]).resolve())] for e in entries
                     if e["role"] == "gallery" and str(Path(e["path"]).resolve()) in id_of}
        thresholds = [None] + [float(t) for t in args.thresholds.split(",") if t]
        for threshold in thresholds:
            command = [args.lookalike, "duplicates", "--store", str(store), "--model", model, "--json"]
            if threshold is not None:
                command += ["--threshold", str(threshold)]
            report = json.loads(run(command))
            row = {"model": model, "threshold": report["threshold"], "calibrated": threshold is None,
                   "items": report["searched"], "seconds": report["took_ms"] / 1000}
            row.update(measure(report["groups"], group_of, originals))
            results.append(row)
            print(f"{model:24} threshold {row['threshold']:.4f}{' (calibrated)' if row['calibrated'] else '':13} "
                  f"precision {row['precision']:.4f}  recall {row['recall']:.4f} (original-copy pairs {row['recall_original_copy_pairs']:.4f})  "
                  f"groups {row['groups']:4}  "
                  f"pairs {row['pairs_predicted']:5} (+{row['pairs_between_distractors']} between distractors)  "
                  f"{row['seconds']:.1f} s", flush=True)
        results.append(result_lists(args.lookalike, store, model, entries, id_of, group_of))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


SETTINGS = [("plain", []), ("collapse", ["--collapse"]), ("diversity 0.7", ["--diversity", "0.7"]),
            ("diversity 0.5", ["--diversity", "0.5"]), ("collapse, diversity 0.7", ["--collapse", "--diversity", "0.7"])]


def result_lists(lookalike: str, store: Path, model: str, entries: list[dict], id_of: dict[str, str],
                 group_of: dict[str, str | None]) -> dict:
    """Ten hits for every gallery photo by stored item, under each setting."""
    photos = [id_of[str(Path(e["path"]).resolve())] for e in entries
              if e["role"] == "gallery" and str(Path(e["path"]).resolve()) in id_of]
    row: dict = {"model": model, "queries": len(photos), "settings": {}}
    for name, options in SETTINGS:
        groups = copies = 0
        for photo in photos:
            answer = json.loads(run([lookalike, "search", "--store", str(store), "--model", model, "--item", photo,
                                     "--top", "10", "--json", *options]))
            ids = [hit["id"] for hit in answer["hits"]]
            groups += len({group_of.get(i) or i for i in ids})
            copies += sum(1 for i in ids[1:] if group_of.get(i) is not None and group_of.get(i) == group_of.get(photo))
        row["settings"][name] = {"groups_in_first_10": groups / len(photos), "own_copies_in_first_10": copies / len(photos)}
        print(f"{model:24} {name:24} groups in the first 10: {groups / len(photos):.2f}   "
              f"the photo's own copies among them: {copies / len(photos):.2f}", flush=True)
    return row


if __name__ == "__main__":
    sys.exit(main())
