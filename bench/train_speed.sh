#!/usr/bin/env bash
# Training speed of softserve-train: examples/s for prompt tuning and Residual Prompt Tuning on
# the default model's architecture (t5-small, random weights: speed does not depend on them),
# 64 synthetic sentiment examples of ~20 input tokens, a prompt of 100 rows, batch 8, Adafactor,
# 20 steps. Prints each method's last progress line. Results: docs/BENCHMARKS.md.
# Usage: bash bench/train_speed.sh   (after scripts/run.sh or scripts/build.sh and make-default-model.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${MODEL:-var/models/t5-small-random}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work/train.jsonl" <<'PY'
import random, sys
random.seed(1)
words = "the movie was great bad boring wonderful plot acting film story long short funny sad loved hated".split()
with open(sys.argv[1], "w") as f:
    for _ in range(64):
        text = " ".join(random.choice(words) for _ in range(16))
        f.write('{"input": "sentiment: %s", "target": "%s"}\n' % (text, random.choice(["positive", "negative"])))
PY
for method in prompt residual; do
  "${BUILD_DIR:-build}/bin/softserve-train" --model "$model" --data "$work/train.jsonl" --out "$work/out-$method" \
    --method "$method" --prompt-length 100 --steps 20 --batch-size 8 --json 2>/dev/null | tail -1 | sed "s/^/$method: /"
done
