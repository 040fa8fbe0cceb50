"""Plain-language hybrid queries ("red shoes under $50"), measured on sets whose truth is known.

1. Colour profiles against the dye of every photo of the evaluation catalogue (Fashion-MNIST's test
   split dyed in ten colours, `scripts/make_catalogue.py --split test`): the share a colour must
   cover (`ColorProfile.defaultShare`) is fitted on the items whose id ends in an even hex digit,
   and precision, recall and F1 of "the dye passes" are reported on the others, at the fitted share
   and at the shipped default.
2. Colour profiles of real pictures: the emoji set's gallery pictures whose Unicode name holds a
   colour word ("red apple", "blue book", ...): how often that colour passes the default share.
3. Hybrid queries against the catalogue: "<colour> <product> [<price phrase>]" for every dye and
   product word, through a running `lookalike serve`:
   - exactness: the items the parsed filter passes (`filtered`, and every hit) against a brute-force
     check over `lookalike list --json` (profiles and prices);
   - ranking: P@10 and average precision of the right items (product class, dye and price right)
     for the parsed query, against the same words given literally to the text model (`literal`).

    python scripts/eval_hybrid.py --lookalike .build/release/lookalike [--data .data/eval] [--json OUT]
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARE = 0.1  # ColorProfile.defaultShare, as shipped
COLOURS = ["black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown"]
DYES = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "gray"]
PRODUCTS = {
    "shoes": {"sandal", "sneaker", "ankle-boot"}, "boots": {"ankle-boot"}, "sneakers": {"sneaker"}, "sandals": {"sandal"},
    "a bag": {"bag"}, "a dress": {"dress"}, "a coat": {"coat"}, "trousers": {"trouser"}, "a shirt": {"shirt", "t-shirt"},
    "a sweater": {"pullover"},
}
# Each price phrase, with what it means.
PRICES = {"": lambda p: True, "under $50": lambda p: p < 50, "between 20 and 100": lambda p: 20 <= p <= 100,
          "over 80": lambda p: p > 80}


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode not in (0, 2):
        sys.exit(f"{' '.join(command[:3])}... failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def build_store(lookalike: str, folder: Path, store: Path, models: list[str], metadata: Path | None) -> list[dict]:
    """Adds the folder's images (once; a later run finds them stored) and lists the items."""
    command = [lookalike, "add", "-r", str(folder), "--store", str(store)]
    for model in models:
        command += ["--model", model]
    if metadata:
        command += ["--metadata", str(metadata)]
    run(command)
    items, after = [], None
    while True:
        page = json.loads(run([lookalike, "list", "--json", "--limit", "1000", "--store", str(store)]
                              + (["--after", after] if after else [])).stdout)
        items += page["items"]
        after = page.get("next")
        if not after:
            return items


# The peer: each pixel named by the nearest CSS colour of the same name in plain sRGB distance,
# the way a quick script would do it (no Lab, one shade per name).
CSS = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "red": (255, 0, 0), "orange": (255, 165, 0),
       "yellow": (255, 255, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "purple": (128, 0, 128), "pink": (255, 192, 203),
       "brown": (165, 42, 42)}


def css_profile(path: str) -> dict[str, float]:
    """The peer's profile of an image: transparent parts on white, as Lookalike's decoder has them."""
    image = Image.open(path)
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3)
    references = np.array(list(CSS.values()), dtype=np.float32)
    nearest = ((pixels[:, None, :] - references[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    counts = np.bincount(nearest, minlength=len(CSS))
    return {name: float(count) / len(nearest) for name, count in zip(CSS, counts)}


def fitted_and_reported(fit: list[dict], held: list[dict], dye_of: dict[str, str]) -> dict:
    """The share with the best F1 on `fit` (0.02 to 0.40; ties go nearest the default), scored on
    `held` at that share and at the default."""
    grid = [round(0.02 * k, 2) for k in range(1, 21)]
    fitted = max(grid, key=lambda share: (colour_scores(fit, dye_of, share)["f1"], -abs(share - DEFAULT_SHARE)))
    return {"fitted_on_even_ids": fitted, "fit_half": colour_scores(fit, dye_of, fitted),
            "report_half_at_fitted": colour_scores(held, dye_of, fitted),
            "report_half_at_default": colour_scores(held, dye_of, DEFAULT_SHARE)}


def colour_scores(items: list[dict], dye_of: dict[str, str], share: float) -> dict:
    """Precision, recall and F1 of "the dye passes at `share`", over every (item, dye colour) pair."""
    tp = fp = fn = 0
    for item in items:
        profile = item.get("colors") or {}
        for colour in DYES:
            predicted = profile.get(colour, 0) >= share
            actual = dye_of[item["id"]] == colour
            tp += predicted and actual
            fp += predicted and not actual
            fn += actual and not predicted
    precision = tp / max(1, tp + fp)
    recall = tp / max(1, tp + fn)
    return {"share": share, "precision": round(precision, 3), "recall": round(recall, 3),
            "f1": round(2 * precision * recall / max(1e-9, precision + recall), 3)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(lookalike: str, store: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([lookalike, "serve", "--store", str(store), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/v1/server", timeout=2).read()
            return process, base
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    sys.exit("the server did not start")


def search(base: str, body: dict) -> dict:
    request = urllib.request.Request(base + "/v1/collections/default/search", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def average_precision(ranked: list[str], relevant: set[str]) -> float:
    hits, total = 0, 0.0
    for rank, item in enumerate(ranked, 1):
        if item in relevant:
            hits += 1
            total += hits / rank
    return total / max(1, len(relevant))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lookalike", required=True)
    parser.add_argument("--data", type=Path, default=ROOT / ".data" / "eval")
    parser.add_argument("--per-class", type=int, default=80)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    python = sys.executable
    catalogue = args.data / "catalogue"
    run([python, str(ROOT / "scripts" / "make_catalogue.py"), "--split", "test", "--per-class", str(args.per_class),
         "--out", str(catalogue)])
    truth = {str((catalogue / line["path"]).resolve()): line
             for line in map(json.loads, (catalogue / "catalogue.jsonl").read_text().splitlines())}
    store = args.data / "stores" / f"catalogue-{args.per_class}"
    items = build_store(args.lookalike, catalogue / "images", store, ["words", "efficientnet-lite0-gem"],
                        catalogue / "metadata.jsonl")
    by_id = {item["id"]: truth[str(Path(item["path"]).resolve())] for item in items}
    dye_of = {item_id: entry["color"] for item_id, entry in by_id.items()}
    report: dict = {"items": len(items)}

    # 1. The default share, fitted on one half and reported on the other.
    fit = [i for i in items if int(i["id"][-1], 16) % 2 == 0]
    held = [i for i in items if int(i["id"][-1], 16) % 2 == 1]
    report["colour_share"] = {
        **fitted_and_reported(fit, held, dye_of),
        "per_dye_recall_at_default": {
            dye: round(sum((i.get("colors") or {}).get(dye, 0) >= DEFAULT_SHARE for i in held if dye_of[i["id"]] == dye)
                       / max(1, sum(dye_of[i["id"]] == dye for i in held)), 3) for dye in DYES},
    }
    # The peer, on the same photos and halves.
    peer = {item["id"]: {"id": item["id"], "colors": css_profile(item["path"])} for item in items}
    report["colour_share_css_peer"] = fitted_and_reported([peer[i["id"]] for i in fit], [peer[i["id"]] for i in held], dye_of)

    # 2. Real pictures: emoji named with a colour word.
    gallery = args.data / "emoji" / "gallery"
    named = {}
    for path in sorted(gallery.glob("*.png")):
        codepoints = path.name.split("-")[0].split("_")
        try:
            name = " ".join(unicodedata.name(chr(int(c, 16)), "") for c in codepoints).lower()
        except ValueError:
            continue
        words = set(re.findall(r"[a-z]+", name)) & (set(COLOURS) - {"black", "white"})  # BLACK/WHITE in names mean filled/outlined
        if len(words) == 1:
            named[str(path.resolve())] = (words.pop(), name)
    if named:
        with tempfile.TemporaryDirectory() as folder:
            for index, path in enumerate(named):
                os.symlink(path, Path(folder) / f"{index:04d}-{Path(path).name}")
            emoji_items = build_store(args.lookalike, Path(folder), Path(folder) / "store", ["efficientnet-lite0-gem"], None)
            links = {str((Path(folder) / p.name)): str(p.resolve()) for p in Path(folder).glob("*.png")}
            passed = []
            for item in emoji_items:
                source = links.get(item["path"], item["path"])
                colour, name = named[source]
                style = Path(source).stem.split("-", 1)[-1]
                passed.append(((item.get("colors") or {}).get(colour, 0) >= DEFAULT_SHARE, colour, name, style,
                               css_profile(source).get(colour, 0) >= DEFAULT_SHARE))
        styles = sorted({style for _, _, _, style, _ in passed})
        report["emoji_named_colours"] = {
            "pictures": len(passed), "concepts": len({n for _, _, n, _, _ in passed}),
            "colour_passes_default_share": round(sum(p for p, *_ in passed) / max(1, len(passed)), 3),
            "css_peer_passes_default_share": round(sum(q for *_, q in passed) / max(1, len(passed)), 3),
            "by_style": {style: f"{sum(p for p, _, _, s, _ in passed if s == style)}/{sum(s == style for _, _, _, s, _ in passed)}"
                         for style in styles},
            "misses": sorted(f"{n} ({c}, {s})" for p, c, n, s, _ in passed if not p),
        }

    # 3. Hybrid queries through the API.
    def brute_force(colour: str, price_ok) -> set[str]:
        """The items whose stored profile shows `colour` at the default share and whose price passes."""
        chosen = set()
        for item in items:
            price = (item.get("metadata") or {}).get("price")
            if isinstance(price, (int, float)) and (item.get("colors") or {}).get(colour, 0) >= DEFAULT_SHARE and price_ok(price):
                chosen.add(item["id"])
        return chosen

    process, base = serve(args.lookalike, store)
    rows = {"parsed": [], "literal": []}
    exact = queries = 0
    chance: list[float] = []
    try:
        for colour in DYES:
            for product, classes in PRODUCTS.items():
                for phrase, price_ok in PRICES.items():
                    text = " ".join(part for part in [colour, product, phrase] if part)

                    def right(item_id: str) -> bool:
                        entry = by_id[item_id]
                        return entry["category"] in classes and entry["color"] == colour and price_ok(entry["price"])
                    relevant = {i for i in by_id if right(i)}
                    if not relevant:
                        continue
                    queries += 1
                    parsed = search(base, {"text": text, "top": 1000})
                    passing = brute_force(colour, price_ok)
                    ids = [hit["id"] for hit in parsed["hits"]]
                    exact += parsed["filtered"] == len(passing) and set(ids) == passing
                    # What a random order of the items the filter passes would score: the words' share.
                    chance.append(len(relevant & passing) / max(1, len(passing)))
                    literal = search(base, {"text": text, "top": 1000, "literal": True})
                    for row, answer in (("parsed", ids), ("literal", [hit["id"] for hit in literal["hits"]])):
                        rows[row].append({"p10": sum(i in relevant for i in answer[:10]) / min(10, len(relevant)),
                                          "ap": average_precision(answer, relevant)})
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    report["hybrid"] = {
        "queries": queries, "filter_exact_against_brute_force": f"{exact}/{queries}",
        "filter_alone_random_order_precision": round(sum(chance) / max(1, len(chance)), 3),
        **{row: {"p10": round(sum(r["p10"] for r in rs) / max(1, len(rs)), 3),
                 "map": round(sum(r["ap"] for r in rs) / max(1, len(rs)), 3)} for row, rs in rows.items()},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
