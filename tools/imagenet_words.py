#!/usr/bin/env python3
"""The words `words` mixes for each ImageNet class: its name, enriched from WordNet.

Input: ``tools/imagenet-classes.txt`` (the 1,000 class names in the order of EfficientNet-Lite0's
logits) and WordNet 3.0 from Debian's ``wordnet-base`` (``/usr/share/wordnet``).

Each class is first found in WordNet. ImageNet's classes are WordNet noun synsets, and their
order is the order of their synset ids (``n`` + the offset in ``data.noun``), so a class name
with several senses ("crane", the bird and the machine) is resolved by that order: among the
noun synsets having the name as a lemma, the classes take the increasing sequence of offsets
that matches the most of them (a longest increasing subsequence with choices), and among those
the most frequent senses.

Then each class becomes one line of text, by ``--words``:

* ``name``: the class name alone;
* ``synonyms``: the name and the other lemmas of its synset ("tabby, tabby cat");
* ``hypernyms``: the name, then the nearest more general words a person would say: walking up
  the synset's hypernyms, up to ``--levels`` of them, the lemmas that are one word of the text
  encoder's vocabulary ("golden retriever, retriever, dog"), leaving out the abstract top of the
  hierarchy ("organism", "artifact", ...);
* ``both``: synonyms, then hypernyms.

Usage::

    python tools/imagenet_words.py --classes tools/imagenet-classes.txt --vocabulary VOCAB.txt \\
        --words hypernyms --output OUT.txt [--wordnet /usr/share/wordnet]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The abstract top of WordNet's noun hierarchy: true of everything below, useful to no query.
ABSTRACT = {
    "entity", "physical_entity", "abstraction", "object", "whole", "thing", "matter", "substance", "unit", "part",
    "organism", "being", "living_thing", "animate_thing", "artifact", "artefact", "instrumentality", "instrumentation",
    "device", "container", "structure", "construction", "covering", "commodity", "article", "group", "collection",
    "attribute", "measure", "relation", "communication", "psychological_feature", "event", "act", "location",
    "region", "natural_object", "geological_formation", "formation", "equipment", "implement", "system", "creation",
    "product", "food", "nutrient", "solid", "plant_part", "plant_organ", "vertebrate", "craniate", "chordate",
    "invertebrate", "placental", "eutherian", "mammal", "animal", "beast", "fauna", "brute", "creature", "person",
    "individual", "someone", "somebody", "mortal", "soul", "causal_agent", "cause", "agent", "worker", "adult",
}


def read_synsets(wordnet: Path) -> tuple[dict[str, list[int]], dict[int, tuple[list[str], list[int]]]]:
    """Lemma -> noun synset offsets, and offset -> (lemmas, hypernym offsets)."""
    index: dict[str, list[int]] = {}
    for line in (wordnet / "index.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split()
        synset_count = int(fields[2])
        index[fields[0]] = [int(offset) for offset in fields[-synset_count:]]
    synsets: dict[int, tuple[list[str], list[int]]] = {}
    for line in (wordnet / "data.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split(" | ")[0].split()
        offset, count = int(fields[0]), int(fields[3], 16)
        lemmas = [fields[4 + 2 * i] for i in range(count)]
        position = 4 + 2 * count
        pointers = int(fields[position])
        hypernyms = []
        for p in range(pointers):
            symbol, target, pos = fields[position + 1 + 4 * p: position + 4 + 4 * p]
            if symbol in ("@", "@i") and pos == "n":
                hypernyms.append(int(target))
        synsets[offset] = (lemmas, hypernyms)
    return index, synsets


def resolve(names: list[str], index: dict[str, list[int]]) -> list[int | None]:
    """Each class's synset offset: the increasing choice of candidates that covers the most
    classes, and among those, the one that takes the most frequent senses (index.noun lists a
    lemma's senses most frequent first)."""
    candidates = [[(offset, rank) for rank, offset in enumerate(index.get(name.lower().replace(" ", "_"), []))]
                  for name in names]
    offsets = sorted({offset for options in candidates for offset, _ in options})
    position = {offset: i + 1 for i, offset in enumerate(offsets)}
    # A Fenwick tree over offsets: the best (classes covered, -sum of sense ranks, node) of a
    # sequence ending below an offset.
    tree: list[tuple[int, int, tuple[int, int] | None]] = [(0, 0, None)] * (len(offsets) + 1)

    def best_below(i: int) -> tuple[int, int, tuple[int, int] | None]:
        result = (0, 0, None)
        while i > 0:
            if tree[i][:2] > result[:2]:
                result = tree[i]
            i -= i & -i
        return result

    def offer(i: int, value: tuple[int, int, tuple[int, int]]) -> None:
        while i < len(tree):
            if value[:2] > tree[i][:2]:
                tree[i] = value
            i += i & -i

    parent: dict[tuple[int, int], tuple[int, int] | None] = {}
    overall: tuple[int, int, tuple[int, int] | None] = (0, 0, None)
    for cls, options in enumerate(candidates):
        # All of a class's options look only at earlier classes: compute first, then offer.
        computed = []
        for offset, rank in options:
            count, score, node = best_below(position[offset] - 1)
            computed.append((offset, (count + 1, score - rank, (cls, offset)), node))
        for offset, value, node in computed:
            parent[(cls, offset)] = node
            offer(position[offset], value)
            if value[:2] > overall[:2]:
                overall = value
    chosen: list[int | None] = [None] * len(names)
    node = overall[2]
    while node is not None:
        chosen[node[0]] = node[1]
        node = parent[node]
    return chosen


def words_for(name: str, offset: int | None, synsets, vocabulary: set[str], mode: str, levels: int) -> str:
    parts = [name]
    if offset is None or mode == "name":
        return name
    lemmas, hypernyms = synsets[offset]
    seen = {name.lower().replace(" ", "_")}
    if mode in ("synonyms", "both"):
        for lemma in lemmas:
            if lemma.lower() not in seen:
                seen.add(lemma.lower())
                parts.append(lemma.replace("_", " "))
    if mode in ("hypernyms", "both"):
        frontier, depth = hypernyms, 0
        while frontier and depth < levels:
            depth += 1
            next_frontier = []
            for parent in frontier:
                parent_lemmas, parent_hypernyms = synsets[parent]
                for lemma in parent_lemmas:
                    key = lemma.lower()
                    if key in seen or key in ABSTRACT or "_" in key or key not in vocabulary:
                        continue
                    seen.add(key)
                    parts.append(key)
                next_frontier += parent_hypernyms
            frontier = next_frontier
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=Path, required=True)
    parser.add_argument("--vocabulary", type=Path, required=True, help="the text encoder's vocab.txt")
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--words", choices=["name", "synonyms", "hypernyms", "both"], default="hypernyms")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--output", type=Path, required=True)
    arguments = parser.parse_args(argv)
    names = [line.strip() for line in arguments.classes.read_text().splitlines() if line.strip()]
    try:
        index, synsets = read_synsets(arguments.wordnet)
    except OSError as error:
        print(f"imagenet_words: cannot read WordNet in {arguments.wordnet}: {error} (Debian package wordnet-base)", file=sys.stderr)
        return 1
    vocabulary = {line.strip() for line in arguments.vocabulary.read_text().splitlines()}
    offsets = resolve(names, index)
    found = sum(offset is not None for offset in offsets)
    lines = [words_for(name, offset, synsets, vocabulary, arguments.words, arguments.levels) for name, offset in zip(names, offsets)]
    temporary = arguments.output.with_suffix(arguments.output.suffix + ".partial")
    temporary.write_text("".join(line + "\n" for line in lines))
    temporary.replace(arguments.output)
    print(f"imagenet_words: {found} of {len(names)} classes found in WordNet; wrote {arguments.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
