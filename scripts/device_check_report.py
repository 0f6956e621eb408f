#!/usr/bin/env python3
"""Writes OUT/results.md for scripts/device-check.sh from what its steps left in OUT: the
environment, the reference suites' CTest summary, softserve-engine-bench's JSON per model and
the Hugging Face baseline's JSON per model. Standard library only."""
import argparse
import json
import os
import re


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"missing": f"{path}: {e}"}


def tests_summary(path):
    try:
        text = open(path).read()
    except OSError:
        return "no test output", []
    summary = re.findall(r"^\d+% tests passed.*$", text, re.M)
    failed = re.findall(r"^\s+\d+ - (.*) \((?:Failed|Timeout|SEGFAULT|Subprocess aborted|Exception)\)$", text, re.M)
    skipped = len(re.findall(r"\(Skipped\)$", text, re.M))
    line = summary[-1] if summary else "no CTest summary"
    return f"{line}; {skipped} skipped", failed


def model_section(out, model):
    engine = load(os.path.join(out, f"engine-{model}.json"))
    hf = load(os.path.join(out, f"hf-{model}.json"))
    lines = [f"### {model}", ""]
    if not isinstance(engine, list):
        lines += [f"engine benchmark: no results ({engine.get('missing', engine)})", ""]
        return lines
    hf_rows = {r["batch"]: r for r in hf.get("rows", [])} if isinstance(hf, dict) else {}
    if isinstance(hf, dict) and "skipped" in hf:
        lines += [f"Hugging Face baseline not run: {hf['skipped']}", ""]
    elif isinstance(hf, dict) and "missing" in hf:
        lines += [f"Hugging Face baseline: no results ({hf['missing']})", ""]
    elif isinstance(hf, dict):
        lines += [f"Hugging Face: transformers {hf.get('transformers')}, peft {hf.get('peft')}, "
                  f"torch {hf.get('torch')}", ""]
    lines += ["| batch | softserve tokens/s, mixed prompts | one prompt | HF+PEFT one prompt | "
              "HF mixed (inputs_embeds) | softserve mixed / HF+PEFT | softserve mixed / HF mixed | "
              "decode step ms | memory floor ms | step / floor | KV cache MiB | device memory used MiB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in engine:
        b = r["batch"]
        h = hf_rows.get(b, {})
        peft = h.get("peft_one_prompt_tokens_per_s")
        mixed = h.get("hf_mixed_prompts_tokens_per_s")
        ours = r["new_tokens_per_s_mixed_prompts"]

        def fmt(v, spec=".1f"):
            return format(v, spec) if isinstance(v, (int, float)) else "-"

        floor = r.get("memory_floor_ms", 0)
        step = r.get("decode_step_ms_median", 0)
        used = r.get("device_memory_used_bytes")
        lines.append(" | ".join([
            f"| {b}", fmt(ours), fmt(r["new_tokens_per_s_one_prompt"]), fmt(peft), fmt(mixed),
            fmt(ours / peft if peft else None, ".2f"), fmt(ours / mixed if mixed else None, ".2f"),
            fmt(step, ".2f"), fmt(floor, ".3f"), fmt(step / floor if floor else None, ".1f"),
            fmt(r.get("kv_cache_bytes", 0) / 2**20), fmt(used / 2**20 if used else None, ".0f")]) + " |")
    if engine:
        lines += ["", f"memory read bandwidth measured in the run: {engine[0].get('memory_bandwidth_gbs', 0):.0f} GB/s", ""]
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--dtype", required=True)
    p.add_argument("--tests", required=True)
    p.add_argument("--seconds", type=int, default=0)
    a = p.parse_args()
    env = open(os.path.join(a.out, "environment.txt")).read().strip() if os.path.exists(
        os.path.join(a.out, "environment.txt")) else "unknown"
    summary, failed = tests_summary(a.tests)
    lines = ["# softserve device check", "", f"device {a.device}, {a.dtype}; {a.seconds} s in all", "",
             "```", env, "```", "", "## Reference suites (CTest)", "", summary, ""]
    lines += [f"- failed: {t}" for t in failed] or ["every test that ran passed"]
    lines += ["", "## Throughput: softserve engine vs Hugging Face generate()", "",
              "Workload: a soft prompt then random input ids, exactly N new greedy tokens per request; "
              "softserve mixes a different prompt on every row; the floor is the bytes one decode step "
              "must read (decoder weights + the rows' keys/values) over the read bandwidth measured in the run.", ""]
    for m in a.models.split(","):
        lines += model_section(a.out, m)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
