"""Train a tiny causal transformer on rrweb token windows with the DALI loader: THE example.

Read top to bottom: ``make_loader`` gives dicts of tensors already on the device; the loss is the
next-token cross entropy over ``labels`` (``input_ids`` with -100 at the pads, skipped); the time
blocked in ``next(loader)`` is measured beside the step time; ``loader.state_dict()`` goes into
the checkpoint with the model and optimizer, so a resumed run continues at the next batch; and
``with loader.profile(runs_dir)`` (``--runs``) records the run for ``rrweb-dali dashboard``.

On a GPU the defaults are 4 layers of width 256 on full 2048-token windows; on the CPU a smaller
model on the first ``--seq-len 128`` tokens of each window so it ends in a minute or two.

    python bench/train.py [--device cuda|cpu] [--steps N] [--ckpt PATH] [--resume PATH]
                          [--runs DIR] [--json PATH] [--shards DIR | --synth N]

``--hf [gpt2|llama]``: the same loop with a tiny Hugging Face causal LM built from a config
(``model(**batch).loss`` on ``layout="hf"`` batches), trained twice from the same initial weights
at an equal budget of real tokens: padded rows (``max_length``) and packed rows (``packing``,
documents kept apart by ``position_ids``). Prints training tokens/s, steps and losses side by side
(see :mod:`bench._hf`).
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]  # import from the repository root, not bench/
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from bench._data import add_data_args, bench_datasets  # noqa: E402
from rrweb_dali.loader import IGNORE_INDEX, make_loader  # noqa: E402
from rrweb_dali.tokenizer import Tokenizer  # noqa: E402

#            layers, width, heads, batch, tokens per row, steps
DEFAULTS = {"cuda": (4, 256, 4, 32, 2048, 200), "cpu": (2, 128, 4, 16, 128, 200)}


class Block(nn.Module):
    """Pre-norm attention + MLP. Pads sit after the real tokens and attention is causal, so no
    real position ever attends to a pad: the padded batch needs no extra mask."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, w // self.heads).unbind(2)
        att = F.scaled_dot_product_attention(
            *(y.transpose(1, 2) for y in (q, k, v)), is_causal=True
        )
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, w))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab: int, width: int, layers: int, heads: int, max_len: int):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(max_len, width)
        self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(layers)))
        self.ln = nn.LayerNorm(width)
        for emb in (self.tok, self.pos):  # small init: the tied head starts near uniform logits
            nn.init.normal_(emb.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        return self.ln(self.blocks(x)) @ self.tok.weight.T  # output head tied to the embedding


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Position t predicts token t + 1; labels are unshifted and -100 at pads (ignored)."""
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    for name in ("layers", "width", "heads", "batch-size", "seq-len", "steps"):
        ap.add_argument(f"--{name}", type=int, default=None, help="default: by device")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--ckpt", type=Path, help="save model, optimizer and data position here")
    ap.add_argument("--resume", type=Path, help="continue from a --ckpt file")
    ap.add_argument("--runs", type=Path, help="record a profile run into this directory")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument(
        "--hf",
        nargs="?",
        const="gpt2",
        choices=("gpt2", "llama"),
        help="compare padded and packed training of a tiny Hugging Face causal LM",
    )
    ap.add_argument(
        "--vary-lengths",
        action="store_true",
        help="with --hf: cut the windows to random lengths up to --seq-len first",
    )
    add_data_args(ap)
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda")
    defaults = DEFAULTS["cuda" if cuda else "cpu"]
    keys = ("layers", "width", "heads", "batch_size", "seq_len", "steps")
    for key, value in zip(keys, defaults, strict=True):
        if getattr(args, key) is None:
            setattr(args, key, value)
    data = bench_datasets(args)[0]
    if args.hf:
        from bench._hf import compare

        return compare(args, data)

    # The data: padded batches of whole windows (their first seq_len tokens), shuffled per epoch.
    loader = make_loader(
        data.path,
        batch_size=args.batch_size,
        device=args.device,
        seed=0,
        max_length=args.seq_len,
        labels=True,
    )
    torch.manual_seed(0)
    vocab = Tokenizer().vocab_size
    model = TinyGPT(vocab, args.width, args.layers, args.heads, args.seq_len).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))
    step = 0
    if args.resume:  # model, optimizer and data position together: the next batch is the next one
        ckpt = torch.load(args.resume, map_location=args.device)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        warm.load_state_dict(ckpt["sched"])
        loader.load_state_dict(ckpt["loader"])
        step = ckpt["step"]
    autocast = torch.autocast("cuda", torch.bfloat16) if cuda else contextlib.nullcontext()

    losses, step_s, wait_s, tokens = [], [], [], []
    profiled = loader.profile(args.runs, "train") if args.runs else contextlib.nullcontext(loader)
    with profiled as batches:
        while step < args.steps:
            epoch_batches = iter(batches)  # the rest of the current epoch; iter() again: the next
            while step < args.steps:
                t0 = time.perf_counter()
                batch = next(epoch_batches, None)
                t1 = time.perf_counter()
                if batch is None:
                    break  # end of the epoch
                with autocast:
                    logits = model(batch["input_ids"])
                loss = next_token_loss(logits, batch["labels"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                warm.step()
                losses.append(loss.item())  # waits for the device: the step is over here
                t2 = time.perf_counter()
                step += 1
                wait_s.append(t1 - t0)
                step_s.append(t2 - t0)
                tokens.append(loader.stats()["tokens"])  # host-side counter: no device sync
                if step % 20 == 0 or step == args.steps:
                    print(f"step {step:4d}  loss {loss.item():.3f}  {1e3 * (t2 - t0):.1f} ms")
    if args.ckpt:
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": warm.state_dict()}
        torch.save({**state, "loader": loader.state_dict(), "step": step}, args.ckpt)
    loader.close()
    if not losses:
        raise SystemExit(f"no step to run: already at step {step} of {args.steps}")

    # Summary over the steps after a short warm-up (pipeline build, first kernels).
    skip = min(5, len(losses) // 4)
    span = sum(step_s[skip:])
    k = min(10, len(losses))
    result = {
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "dataset": data.origin,
        "model": {"layers": args.layers, "width": args.width, "heads": args.heads, "vocab": vocab},
        "params": sum(p.numel() for p in model.parameters()),
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "steps": len(losses),
        "first_step": step - len(losses) + 1,
        "step_ms_median": 1e3 * statistics.median(step_s[skip:]),
        "tokens_per_s": (tokens[-1] - (tokens[skip - 1] if skip else 0)) / span if span else None,
        "data_wait_share": sum(wait_s[skip:]) / span if span else None,
        "loss_start": losses[0],
        "loss_end": statistics.fmean(losses[-k:]),
        "loss_end_window": k,
        "loss_went_down": statistics.fmean(losses[-k:]) < losses[0],
        "data_position": loader.state_dict(),
    }
    print(
        f"\n{result['device']} ({result['gpu'] or 'CPU'}), {result['params'] / 1e6:.2f}M params, "
        f"batch {args.batch_size} x {args.seq_len}, {len(losses)} steps\n"
        f"step {result['step_ms_median']:.1f} ms (median), {result['tokens_per_s']:,.0f} tokens/s, "
        f"waiting for data {result['data_wait_share']:.1%} of step time\n"
        f"loss {result['loss_start']:.3f} at the first step -> {result['loss_end']:.3f} "
        f"(mean of the last {k}): {'down' if result['loss_went_down'] else 'NOT down'}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    # A few dozen steps must lower the loss; fewer (a smoke run) prove only that the loop runs.
    return 0 if result["loss_went_down"] or len(losses) < 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
