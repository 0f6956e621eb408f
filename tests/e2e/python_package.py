"""Uses the installed softserve_client package (pip install client/python) against a running
server with the reference checkpoint, and checks its answers against Hugging Face's outputs.

Usage: python_package.py TARGET API_KEY REFERENCE_DIR CASES_FILE
CASES_FILE (JSON): {"install_dir", "input_ids", "greedy", "residual_greedy", "row1_input_ids", "row1_greedy"
(greedy sequences without the decoder start token), "prompt_a_file" (a raw prompt file of prompt.a),
"rank_input_ids", "rank_candidates", "rank_totals"}.
Exit 0 and "python package OK" on success; prints what differed otherwise.
"""
import json
import os
import sys

import grpc

import softserve_client
from softserve_client import Client


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)


def main():
    target, key, ref_dir, cases_file = sys.argv[1:5]
    with open(cases_file, encoding="utf-8") as f:
        cases = json.load(f)
    check(softserve_client.__file__.startswith(cases["install_dir"]),
          f"softserve_client came from {softserve_client.__file__}, not the installed package")
    with Client(target, api_key=key, timeout=30) as c:
        # generate: token ids in, Hugging Face's greedy ids out; several inputs, one bad.
        gens = c.generate([cases["input_ids"], [99999], cases["row1_input_ids"]], max_new_tokens=12)
        check([g.output_ids for g in (gens[0], gens[2])] == [cases["greedy"], cases["row1_greedy"]],
              f"greedy ids {gens[0].output_ids} / {gens[2].output_ids}")
        check(gens[1].finish_reason == "error" and gens[1].error_code == grpc.StatusCode.INVALID_ARGUMENT,
              f"bad input: {gens[1]}")
        # upload a residual checkpoint (format detected), then generate with it.
        info = c.upload_prompt("py-residual", os.path.join(ref_dir, "residual_prompt.safetensors"))
        check(info.format == "residual" and info.version == 1, f"upload: {info}")
        check([p.name for p in c.list_prompts()] == ["py-residual"], "list_prompts")
        with_prompt = c.generate(cases["input_ids"], prompt="py-residual", max_new_tokens=12)[0]
        check(with_prompt.output_ids == cases["residual_greedy"], f"residual ids {with_prompt.output_ids}")
        # stream: the same tokens one by one, then the final result.
        pieces = list(c.stream(cases["input_ids"], prompt="py-residual", max_new_tokens=12, return_logprobs=True))
        tokens = [p.token_id for p in pieces if p.final is None]
        check(tokens == cases["residual_greedy"], f"streamed {tokens}")
        check(pieces[-1].final is not None and pieces[-1].final.output_ids == tokens, "stream final")
        # score: Hugging Face's totals of the rank candidates under prompt a (a raw upload).
        check(c.upload_prompt("py-raw", cases["prompt_a_file"]).format == "raw", "raw upload")
        s = c.score(cases["rank_input_ids"], cases["rank_candidates"], prompt="py-raw")
        for got, want in zip([t.total_logprob for t in s.scores], cases["rank_totals"]):
            check(abs(got - want) <= 1e-4 + 1e-4 * abs(want), f"score totals {[t.total_logprob for t in s.scores]} vs {cases['rank_totals']}")
        check(s.best == max(range(len(cases["rank_totals"])), key=lambda i: cases["rank_totals"][i]), f"best {s.best}")
        check(c.delete_prompt("py-residual") == 1, "delete")
        # cancel: a stream sent with a request id, ended from another client after its first
        # token, finishes "cancelled" with the tokens it had; then the id is unknown.
        rid = "py-cancel-%d" % os.getpid()
        with Client(target, api_key=key, timeout=30) as other:
            got, final = [], None
            for p in c.stream(cases["input_ids"], request_id=rid, max_new_tokens=500, min_new_tokens=500):
                if p.final is not None:
                    final = p.final
                    continue
                got.append(p.token_id)
                if len(got) == 1:
                    check(other.cancel(rid) == 1, "cancel found no call")
            check(final is not None and final.finish_reason == "cancelled", f"cancelled stream ended {final}")
            check(final.output_ids == got and 0 < len(got) < 500, f"cancelled stream kept {len(got)} tokens")
            # train: a job on two examples, followed to its end; its prompt serves.
            job = c.train("py-trained", [(cases["input_ids"], [37, 62, 1])] * 2, steps=2, prompt_length=4)
            states = [j.state for j in c.watch_training_job(job.id, timeout=60)]
            final = c.training_job(job.id)
            check(states[-1] == final.state == softserve_client.pb.TRAINING_STATE_SUCCEEDED,
                  f"training ended {final.state}: {final.error_message}")
            check(final.prompt.name == "py-trained" and final.prompt.version >= 1 and final.step == 2, f"trained {final}")
            check(len(c.generate(cases["input_ids"], prompt="py-trained", max_new_tokens=3)) == 1, "trained prompt serves")
            check([j.id for j in c.list_training_jobs()] == [job.id], "list_training_jobs")
            try:
                other.cancel(rid)
                check(False, "a finished call was cancelled")
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.NOT_FOUND, f"cancelling a finished call gave {e.code()}")
        # errors are grpc.RpcError with the server's code.
        try:
            c.generate(cases["input_ids"], prompt="nobody")
            check(False, "an unknown prompt was accepted")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, f"unknown prompt gave {e.code()}")
    with Client(target, api_key="wrong") as bad:
        try:
            bad.model_info()
            check(False, "a wrong key was accepted")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNAUTHENTICATED, f"wrong key gave {e.code()}")
    print("python package OK")


if __name__ == "__main__":
    main()
