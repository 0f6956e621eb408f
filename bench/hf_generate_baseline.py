#!/usr/bin/env python3
"""Hugging Face baseline for softserve-engine-bench: the same workload through transformers'
generate() with PEFT prompt tuning, on the same random checkpoint and device.

Workload (as softserve-engine-bench): each request is a soft prompt of --prompt-rows vectors, then
--input-tokens random ids (the last one eos), and exactly --new-tokens greedy tokens
(min_new_tokens = max_new_tokens). Two figures per batch size:
  peft_one_prompt  PeftModelForSeq2SeqLM.generate() with a prompt-tuning adapter: every row of
                   the batch uses the adapter's one prompt (PEFT cannot mix prompt-tuning
                   adapters in one batch);
  hf_mixed_prompts the base model's generate(inputs_embeds=...) with a different prompt on every
                   row, prepended to the token embeddings by hand: what a Hugging Face user must
                   write to serve several tasks in one batch.
Best of --repeats timed runs after a warm-up, synchronised with the device.

Exit status: 0 on success; 3 when transformers or peft cannot be imported (the message says which),
so that a dry run on a machine without them can report the baseline as not run; 1 otherwise.
"""
import argparse
import json
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, help="Hugging Face T5 checkpoint directory")
    p.add_argument("--batches", default="1,8,32,64")
    p.add_argument("--prompt-rows", type=int, default=20)
    p.add_argument("--input-tokens", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--json", default="", help="also write the figures to this JSON file")
    return p.parse_args()


def import_stack():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import peft  # noqa: F401
    except ImportError as e:
        print(f"hf_generate_baseline: cannot import {e.name}: the baseline needs torch, transformers "
              f"and peft ({e})", file=sys.stderr)
        sys.exit(3)


def synchronize(torch, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(torch, device, repeats, fn):
    fn()  # warm-up
    synchronize(torch, device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        synchronize(torch, device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    args = parse_args()
    import_stack()
    import torch
    from peft import PromptTuningConfig, TaskType, get_peft_model
    from transformers import T5ForConditionalGeneration

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    torch.manual_seed(0)
    base = T5ForConditionalGeneration.from_pretrained(args.model_dir)
    base.to(device=args.device, dtype=dtype).eval()
    config = base.config
    batches = [int(b) for b in args.batches.split(",") if b]
    max_batch = max(batches)
    gen = torch.Generator().manual_seed(1234)
    ids = torch.randint(2, min(config.vocab_size, 32000), (max_batch, args.input_tokens), generator=gen)
    ids[:, -1] = config.eos_token_id
    ids = ids.to(args.device)
    prompts = torch.randn(max_batch, args.prompt_rows, config.d_model, generator=gen).to(args.device, dtype)
    n = args.new_tokens
    common = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1)

    peft_model = get_peft_model(base, PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM,
                                                         num_virtual_tokens=args.prompt_rows))
    peft_model.to(device=args.device, dtype=dtype).eval()

    rows = []
    print(f"Hugging Face transformers {__import__('transformers').__version__}, peft "
          f"{__import__('peft').__version__}, torch {torch.__version__}, {args.device} {args.dtype}")
    print("| batch | PEFT one prompt tokens/s | HF mixed prompts (inputs_embeds) tokens/s |")
    print("|---|---|---|")
    with torch.inference_mode():
        for b in batches:
            x = ids[:b]
            mask = torch.ones_like(x)

            def peft_run():
                return peft_model.generate(input_ids=x, attention_mask=mask, **common)

            def mixed_run():
                embeds = torch.cat([prompts[:b], base.get_input_embeddings()(x)], dim=1)
                full_mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=args.device)
                return base.generate(inputs_embeds=embeds, attention_mask=full_mask, **common)

            peft_s, peft_out = timed(torch, args.device, args.repeats, peft_run)
            mixed_s, mixed_out = timed(torch, args.device, args.repeats, mixed_run)
            # generate() returns the decoder start token, then the new tokens.
            for name, out in (("peft", peft_out), ("mixed", mixed_out)):
                if out.shape != (b, n + 1):
                    raise SystemExit(f"{name} generate returned shape {tuple(out.shape)}, expected {(b, n + 1)}")
            row = {"batch": b, "peft_one_prompt_tokens_per_s": b * n / peft_s,
                   "hf_mixed_prompts_tokens_per_s": b * n / mixed_s}
            rows.append(row)
            print(f"| {b} | {row['peft_one_prompt_tokens_per_s']:.1f} | {row['hf_mixed_prompts_tokens_per_s']:.1f} |",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"transformers": __import__("transformers").__version__,
                       "peft": __import__("peft").__version__, "torch": torch.__version__,
                       "device": args.device, "dtype": args.dtype, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
