"""Training-step speed of the translation network: unrolled against PyTorch, the same model, the same
batches, the same thread count, interleaved in one process (benchmarks/speed.py's ``measure_interleaved``).

    UNROLLED_DATA_DIR=../shared/data PYTHONPATH=src python benchmarks/translation_speed.py --threads 1 2

The model is the one benchmarks/translation.py trains (its CONFIG: bidirectional GRU encoder, bridge, GRU
decoder with general attention, dropout 0.3, label smoothing 0.1), the batches are real Multi30k training
batches (length-bucketed, 64 pairs). One step = forward, label-smoothed token loss, backward, gradient
clipping and Adam; torch runs ``TorchTranslator`` (unrolled.torch.translator, packed source sequences)
with ``torch.optim.Adam`` and ``clip_grad_norm_``. tokens/s counts source and target tokens. The table goes
into docs/performance.md between the markers ``<!-- kept: translation -->`` and ``<!-- /kept -->`` (which
benchmarks/speed.py keeps when it rewrites the page).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import measure_interleaved, thread_limit  # noqa: E402
from translation import CONFIG, data_files, read_pairs  # noqa: E402

from unrolled.data.batching import length_bucketed_batches  # noqa: E402
from unrolled.models.translator import RNNTranslator  # noqa: E402
from unrolled.models.translator_net import translator_backward, translator_forward  # noqa: E402
from unrolled.optim import Adam, clip_grad_norm  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- kept: translation -->", "<!-- /kept -->"


def prepare(count: int):
    files = data_files()
    train = read_pairs(files, "train")
    model = RNNTranslator(**dict(CONFIG, max_steps=0)).fit(train.sources, train.targets)
    from unrolled.text.tokenize import tokenize

    src = [np.array(model.vocab_.source.encode(tokenize(s)), np.int64) for s in train.sources]
    tgt = [np.array(model.vocab_.target.encode(tokenize(t)), np.int64) for t in train.targets]
    order = length_bucketed_batches([len(s) for s in src], CONFIG["batch_size"], shuffle=True,
                                    rng=np.random.default_rng(0))[:count]
    batches = [model._training_batch([src[i] for i in b], [tgt[i] for i in b]) for b in order]
    return model, batches


def make_unrolled(model, batches):
    params = {k: v.copy() for k, v in model.params_.items()}
    optimizer = Adam(params, lr=CONFIG["lr"])
    rng = np.random.default_rng(0)

    def step(i: int) -> float:
        src, src_mask, tgt_in, tgt_out, tgt_mask = batches[i % len(batches)]
        loss, _, cache = translator_forward(params, model.net_config_, src, src_mask, tgt_in, tgt_out, tgt_mask,
                                            label_smoothing=CONFIG["label_smoothing"], training=True, rng=rng)
        grads = translator_backward(cache)
        clip_grad_norm(grads, CONFIG["clip_norm"])
        optimizer.step(grads)
        return loss

    return step


def make_torch(model, batches):
    import torch

    from unrolled.torch.translator import TorchTranslator

    net = TorchTranslator(model.net_config_)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.params_.items()})
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=CONFIG["lr"])
    tensors = [tuple(torch.from_numpy(a) for a in b) for b in batches]
    vocab = model.net_config_.target_vocab_size

    def step(i: int) -> float:
        src, src_mask, tgt_in, tgt_out, tgt_mask = tensors[i % len(tensors)]
        logits, _ = net(src, src_mask, tgt_in)
        target = tgt_out.masked_fill(~tgt_mask, -100)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1), ignore_index=-100,
                                                 label_smoothing=CONFIG["label_smoothing"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CONFIG["clip_norm"])
        optimizer.step()
        return float(loss)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"), help="'-' for stdout only")
    args = parser.parse_args()
    import torch

    model, batches = prepare(args.repeats + 8)
    tokens = statistics.mean(int(b[1].sum() + b[4].sum()) for b in batches)
    rows = []
    for threads in args.threads:
        with thread_limit(threads):
            timings = measure_interleaved({"unrolled": make_unrolled(model, batches),
                                           "torch": make_torch(model, batches)}, repeats=args.repeats, warmup=2,
                                          block=5)
        u, t = timings["unrolled"].median, timings["torch"].median
        rows.append((threads, u, t))
        print(f"threads {threads}: unrolled {u * 1e3:.0f} ms/step ({tokens / u:,.0f} tokens/s), torch "
              f"{t * 1e3:.0f} ms/step ({tokens / t:,.0f} tokens/s), unrolled/torch speed {t / u:.2f}x", flush=True)
    block = [BEGIN, "", "## Translation training step (benchmarks/translation_speed.py)", "",
             f"The Multi30k model of docs/translation.md (`RNNTranslator` defaults of benchmarks/translation.py: "
             f"bidirectional GRU encoder, H = E = 256, general attention, {model.net_config_.source_vocab_size:,} / "
             f"{model.net_config_.target_vocab_size:,} tokens), real length-bucketed training batches of 64 pairs "
             f"({tokens:.0f} source + target tokens per batch on average); one step = forward, label-smoothed "
             "loss, backward, clipping, Adam. PyTorch " + torch.__version__ + " runs the same equations "
             "(`unrolled.torch.translator`, packed source sequences). Medians of "
             f"{args.repeats} interleaved steps.", "",
             "| threads | unrolled ms/step | torch ms/step | unrolled tokens/s | torch tokens/s | speed ratio (> 1: unrolled faster) |",
             "|---|---|---|---|---|---|"]
    block += [f"| {n} | {u * 1e3:.0f} | {t * 1e3:.0f} | {tokens / u:,.0f} | {tokens / t:,.0f} | {t / u:.2f} |"
              for n, u, t in rows]
    block += ["", "Rerun: `UNROLLED_DATA_DIR=../shared/data PYTHONPATH=src python benchmarks/translation_speed.py "
              f"--threads {' '.join(map(str, args.threads))} --repeats {args.repeats}`", "", END]
    text = "\n".join(block)
    if args.out == "-":
        print(text)
        return
    page = Path(args.out).read_text() if os.path.exists(args.out) else ""
    start, end = page.find(BEGIN), page.find(END)
    page = (page[:start] + text + page[end + len(END):]) if start >= 0 and end > start else page.rstrip() + "\n\n" + text + "\n"
    Path(args.out).write_text(page)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
