"""The training loop end to end on a running server: measure a small task with the base model,
train a prompt on the server (TrainingService), and measure again with the registered prompt.

On the default model the weights are RANDOM (no real checkpoint can be downloaded here), so the
task can only be memorisation: 16 made-up reviews with made-up labels. The effect measured is
how many of the training reviews the prompt makes the model label as given (rank
classification: the label with the higher log-likelihood), and the mean token loss of the
labels. Held-out reviews are scored too, to show plainly that nothing generalises on random
weights. With a real checkpoint (scripts/download-model.sh where a network allows) the same
script trains on the same data; give it a real task instead.

Usage: PYTHONPATH=client/python python3 scripts/demo-training.py [TARGET] [API_KEY]
(scripts/demo-training.sh starts a server and runs this.)
"""
import os
import random
import sys
import time

from softserve_client import Client
from softserve_client import pb

WORDS = ("the movie film plot acting story music scenes ending cast was were is felt seemed "
         "great dull bright slow sharp flat warm cold long short").split()
LABELS = ("positive", "negative")
EPOCHS, OPTIMIZER, LR = int(os.environ.get("EPOCHS", 40)), os.environ.get("OPTIMIZER", "adafactor"), float(os.environ.get("LR", 0.3))


def reviews(n, seed):
    rng = random.Random(seed)
    return [("review: " + " ".join(rng.choice(WORDS) for _ in range(10)), rng.choice(LABELS)) for _ in range(n)]


def measure(client, data, prompt=None):
    """(rank-classification accuracy, mean label log-likelihood) of `data` under `prompt`."""
    right, total = 0, 0.0
    for text, label in data:
        s = client.score(text, list(LABELS), prompt=prompt)
        right += LABELS[s.best] == label
        total += s.scores[LABELS.index(label)].total_logprob
    return right / len(data), total / len(data)


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    key = sys.argv[2] if len(sys.argv) > 2 else "softserve-dev-key"
    train, held_out = reviews(16, 1), reviews(16, 2)
    with Client(target, api_key=key, timeout=120) as c:
        info = c.model_info()
        print(f"model: {info.model_dir} ({'RANDOM weights: the task can only be memorised' if info.random_weights else 'real weights'})")
        before_train, before_held = measure(c, train), measure(c, held_out)
        start = time.time()
        # dev = the training set: memorisation is the task, and the job keeps the prompt of the
        # lowest dev loss (evaluated every 5 steps) rather than the last one.
        job = c.train("demo-sentiment", train, dev=train, prompt_length=20, epochs=EPOCHS, batch_size=8,
                      optimizer=OPTIMIZER, lr=LR, eval_every=5, seed=1)
        print(f"training job {job.id}: {job.total_steps} steps of batch {job.options.batch_size}, "
              f"{job.options.method} tuning, {job.options.optimizer}, a {job.options.prompt_length}-row prompt")
        for j in c.watch_training_job(job.id):
            if j.step and j.step % 10 == 0 or j.state != pb.TRAINING_STATE_RUNNING:
                print(f"  step {j.step}/{j.total_steps}: loss {j.loss:.3f}, dev loss {j.dev_loss:.3f} "
                      f"(best {j.best_dev_loss:.3f} at step {j.best_step}), {j.examples_per_second:.1f} examples/s, "
                      f"{pb.TrainingState.Name(j.state)}")
        final = c.training_job(job.id)
        if final.state != pb.TRAINING_STATE_SUCCEEDED:
            sys.exit(f"the job ended {pb.TrainingState.Name(final.state)}: {final.error_message}")
        name = f"{final.prompt.name}@{final.prompt.version}"
        print(f"registered {name} after {time.time() - start:.1f} s; it serves at once:")
        after_train = measure(c, train, prompt=final.prompt.name)
        after_held = measure(c, held_out, prompt=final.prompt.name)
        print("\n| reviews | base model: accuracy, mean label log-lik | with the trained prompt |")
        print("|---|---|---|")
        print(f"| 16 trained on (memorisation) | {before_train[0]:.0%}, {before_train[1]:.2f} | {after_train[0]:.0%}, {after_train[1]:.2f} |")
        print(f"| 16 held out (chance on random weights) | {before_held[0]:.0%}, {before_held[1]:.2f} | {after_held[0]:.0%}, {after_held[1]:.2f} |")
        g = c.generate(train[0][0], prompt=final.prompt.name, max_new_tokens=4)[0]
        print(f"\ngenerate with {name}: {train[0][0]!r} -> {g.text!r} (trained label: {train[0][1]!r})")


if __name__ == "__main__":
    main()
