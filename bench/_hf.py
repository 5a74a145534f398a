"""``bench/train.py --hf``: padded against packed training of a tiny Hugging Face causal LM.

Both runs start from the same initial weights and train until the same number of real (not
padding) tokens has gone through the model: ``--steps x --batch-size x --seq-len``. Padded rows
(``max_length=seq_len``) keep each window's first ``seq_len`` tokens and pad the rest of the row;
packed rows (``packing=seq_len``) are full, every window cut into rows, the documents kept apart
by ``position_ids`` (``layout="hf"``: no attention mask, see ``rrweb_dali.loader.layout``).
``--vary-lengths`` first cuts every window to a seeded random length in ``[seq_len / 8,
seq_len]`` (a derived dataset written once beside the bench data): documents of varied lengths,
as short sessions or instruction data are, where padding costs. Reported per run: steps, training tokens/s (real tokens over loader wait + step time, after a
short warm-up), the share of row slots that were padding, the mean training loss of the last
steps, and the loss on the same fixed padded batches for both (the fair comparison: the training
losses average over different targets).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import time

import torch

from rrweb_dali.loader import make_loader
from rrweb_dali.tokenizer import Tokenizer

EVAL_BATCHES = 4
WARMUP_STEPS = 5
VARIED_UNITS = 20_000  # windows kept in the --vary-lengths dataset


def varied_lengths(data, seq_len: int):
    """``data`` with each window cut to a seeded length in ``[seq_len // 8, seq_len]`` (cached)."""
    import numpy as np
    from rrweb_dali.external_source.reader import ShardReader

    from rrweb_dali.shards.format import ShardWriter
    from rrweb_dali.shards.manifest import Manifest, write_manifest

    out = data.path.parent / f"{data.path.name}-varied{seq_len}"
    marker = out / ".bench-complete"
    if not marker.is_file():
        reader = ShardReader(data.path)
        n = min(len(reader), VARIED_UNITS)
        cuts = np.random.default_rng(0).integers(max(1, seq_len // 8), seq_len + 1, size=n)
        writer = ShardWriter(out / "shards", "shard-000000")
        fid = writer.add_file("windows")
        for i in range(n):
            writer.add(np.asarray(reader[i][: cuts[i]]), fid)
        write_manifest(out, Manifest(tokenizer=reader.tokenizer, shards=[writer.close()]))
        marker.write_text("done\n")
    return type(data)(
        data.name, out, f"{data.origin}, windows cut to {seq_len // 8}-{seq_len} tokens"
    )


def build_model(kind: str, vocab: int, args: argparse.Namespace) -> torch.nn.Module:
    """A small causal LM from a config (never a download), sdpa attention."""
    import transformers

    if kind == "gpt2":
        config = transformers.GPT2Config(
            n_layer=args.layers,
            n_head=args.heads,
            n_embd=args.width,
            vocab_size=vocab,
            n_positions=args.seq_len,
            bos_token_id=None,
            eos_token_id=None,
        )
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            num_hidden_layers=args.layers,
            num_attention_heads=args.heads,
            num_key_value_heads=args.heads,
            hidden_size=args.width,
            intermediate_size=4 * args.width,
            vocab_size=vocab,
            max_position_embeddings=args.seq_len,
        )
        model = transformers.LlamaForCausalLM(config)
    model.set_attn_implementation("sdpa")
    return model


def _loader(data, args, packed: bool, seed: int = 0):
    cap = {"packing": args.seq_len} if packed else {"max_length": args.seq_len}
    return make_loader(
        data.path, batch_size=args.batch_size, device=args.device, seed=seed, layout="hf", **cap
    )


class Run:
    """One training run, stepped from outside: ``model(**batch).loss`` until ``budget`` real
    tokens have been trained on. The two runs alternate step by step, so a change in the
    machine's load (other processes) falls on both alike."""

    def __init__(self, model, loader, args, budget: int):
        cuda = args.device.startswith("cuda")
        self.autocast = torch.autocast("cuda", torch.bfloat16) if cuda else contextlib.nullcontext
        self.model, self.loader, self.budget = model.train(), loader, budget
        self.opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
        self.warm = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: min(1.0, (s + 1) / 20))
        self.losses, self.step_s, self.step_tokens, self.seen = [], [], [], 0
        self.rng = torch.random.get_rng_state()  # each run's own dropout draws
        self._batches = iter(loader)

    @property
    def done(self) -> bool:
        return self.seen >= self.budget

    def step(self) -> None:
        torch.random.set_rng_state(self.rng)
        before = self.loader.stats()["tokens"]  # host-side counters: no device sync
        t0 = time.perf_counter()
        batch = next(self._batches, None)
        if batch is None:  # end of an epoch: the next iter() starts the next one
            self._batches = iter(self.loader)
            batch = next(self._batches)
        with self.autocast():
            loss = self.model(**batch).loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.warm.step()
        self.losses.append(loss.item())  # waits for the device: the step is over here
        self.step_s.append(time.perf_counter() - t0)
        self.step_tokens.append(self.loader.stats()["tokens"] - before)
        self.seen += self.step_tokens[-1]
        self.rng = torch.random.get_rng_state()

    def result(self) -> dict:
        stats = self.loader.stats()
        self.loader.close()
        skip = min(WARMUP_STEPS, len(self.losses) // 4)
        k = min(10, len(self.losses))
        return {
            "steps": len(self.losses),
            "tokens": self.seen,
            "tokens_per_s": sum(self.step_tokens[skip:]) / sum(self.step_s[skip:]),
            # Robust to the odd slow step (another process taking the CPU): mean tokens per
            # step over the median step time.
            "tokens_per_s_median_step": statistics.fmean(self.step_tokens[skip:])
            / statistics.median(self.step_s[skip:]),
            "step_ms_median": 1e3 * statistics.median(self.step_s[skip:]),
            "padding_share": 1.0 - stats["padding_efficiency"],
            "loss_start": self.losses[0],
            "loss_end": statistics.fmean(self.losses[-k:]),
        }


def evaluate(model, batches) -> float:
    """Mean loss over ``batches`` (token-weighted), in eval mode."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += model(**batch).loss.item() * n
            count += n
    return total / count


def compare(args: argparse.Namespace, data) -> int:
    """Train padded and packed from the same weights; print and (``--json``) store both."""
    if args.vary_lengths:
        data = varied_lengths(data, args.seq_len)
    vocab = Tokenizer().vocab_size
    torch.manual_seed(0)
    initial = build_model(args.hf, vocab, args)
    budget = args.steps * args.batch_size * args.seq_len
    probe = _loader(data, args, packed=False, seed=12345)
    eval_batches = [b for _, b in zip(range(EVAL_BATCHES), probe, strict=False)]
    runs = {}
    for name, packed in (("padded", False), ("packed", True)):
        torch.manual_seed(1)  # the same dropout draws for both runs
        model = copy.deepcopy(initial).to(args.device)
        runs[name] = Run(model, _loader(data, args, packed), args, budget)
    while not all(run.done for run in runs.values()):
        for run in runs.values():
            if not run.done:
                run.step()
    results = {}
    for name, run in runs.items():
        results[name] = {**run.result(), "eval_loss": evaluate(run.model, eval_batches)}
    probe.close()
    results["eval_loss_initial"] = evaluate(initial.to(args.device), eval_batches)
    params = sum(p.numel() for p in initial.parameters())
    print(
        f"\n{args.hf} from a config, {params / 1e6:.2f}M params, sdpa, {args.device}; "
        f"batch {args.batch_size} x {args.seq_len}; budget {budget:,} real tokens each; "
        f"{data.origin}"
    )
    rows = (
        ("steps", "{:,}", "steps"),
        ("training tokens/s", "{:,.0f}", "tokens_per_s"),
        ("training tokens/s at the median step", "{:,.0f}", "tokens_per_s_median_step"),
        ("step (median, ms)", "{:.1f}", "step_ms_median"),
        ("padding share of rows", "{:.1%}", "padding_share"),
        ("training loss, first step", "{:.3f}", "loss_start"),
        ("training loss, last 10 steps", "{:.3f}", "loss_end"),
        (f"loss on {EVAL_BATCHES} fixed padded batches", "{:.3f}", "eval_loss"),
    )
    print(f"{'':40}{'padded':>12}{'packed':>12}")
    for label, fmt, key in rows:
        a, b = (fmt.format(results[n][key]) for n in ("padded", "packed"))
        print(f"{label:40}{a:>12}{b:>12}")
    print(f"(loss on the fixed batches before training: {results['eval_loss_initial']:.3f})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    # A few dozen steps must lower the loss; fewer (a smoke run) prove only that the loop runs.
    went_down = all(results[n]["eval_loss"] < results["eval_loss_initial"] for n in runs)
    return 0 if went_down or args.steps < 50 else 1
