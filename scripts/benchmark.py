"""Speed and memory of every method against the autoencoder's own cost: benchmarks/results.json.

    python scripts/benchmark.py                       # bundled model, 10 s of content and style, level 2
    python scripts/benchmark.py --model jukebox_5b    # the official weights
    python scripts/benchmark.py --devices gpu --no-memory   # add or refresh the GPU entry only
    python scripts/benchmark.py --training-only       # refresh the training-step entry only

For identity (plain reconstruction: the floor), codebook, adain, wct and gram (per L-BFGS
iteration) on 10 s of 44.1 kHz content with a 10 s style whose analysis is cached (one
style, many contents), and with the style analysed from scratch: seconds, real-time factor,
ratio to the reconstruction, GFLOP counted by torch's FlopCounterMode and the rate achieved.
bf16 autocast is timed too, with its drift in l2-mfcc against float32. Peak memory (RSS) of
a fresh process streaming 30 s, 2 min and 10 min of content through adain shows that
memory does not grow with duration. A training step of VQ-VAE pre-training (batch 8 of 1 s
crops at level 2; the whole model or the decoder alone; Jukebox's loss or the log-mel loss)
is timed too, with its FLOP rate against the reconstruction's. Close other work first: the
numbers are wall-clock.
Devices not timed in a run keep their entries (and their machine's description) from the
existing results file, so the CPU and GPU entries can be measured on different machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.flop_counter import (
    FlopCounterMode,
    conv_flop_count,
    flop_registry,
    register_flop_formula,
)

from jukestyle.evaluation.metrics import l2_mfcc
from jukestyle.fileio import write_json, write_text
from jukestyle.jukebox import load_vqvae
from jukestyle.jukebox.kernels import FUSED_CONVOLUTION
from jukestyle.methods import make_method
from jukestyle.pipeline import StyleTransfer
from jukestyle.runtime import configure_cpu

REPO = Path(__file__).resolve().parents[1]
METHODS = ("identity", "codebook", "adain", "wct", "gram")
GRAM_ITERATIONS = 3  # timed L-BFGS iterations; reported per iteration
MEMORY_SECONDS = (30, 120, 600)


def test_signal(seconds: float, rate: int, seed: int, start: int = 0) -> np.ndarray:
    """Music-like audio: a sequence of harmonic notes with decays over a little noise (deterministic,
    and any stretch of it can be made on its own, so long files are written block by block)."""
    t = (start + np.arange(int(seconds * rate))) / rate
    note = np.floor(t * 2.0)  # two notes per second
    rng = np.random.default_rng(seed)
    scale = 2.0 ** (rng.permutation(12)[:8] / 12.0)
    frequency = 196.0 * scale[(note.astype(int) * 5 + seed) % len(scale)]
    phase = 2 * np.pi * frequency * t
    tone = sum(np.sin(k * phase) / k ** (1.0 + 0.3 * seed) for k in range(1, 8))
    decay = np.exp(-3.0 * (t - note / 2.0))
    noise = 0.003 * np.random.default_rng(seed + start).standard_normal(len(t))
    return (0.2 * tone * decay + noise).astype(np.float32)


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def count_fused_convolutions() -> None:
    """Teach FlopCounterMode the fused oneDNN convolutions that the CPU model's residual blocks run
    (jukebox/layers.py): it knows aten's convolutions only, and would count those as free."""
    fused = FUSED_CONVOLUTION
    if fused is None or fused in flop_registry:  # no oneDNN, or already taught
        return

    @register_flop_formula(fused)
    def flops(x_shape, *args, out_shape=None, **kwargs) -> int:
        # (X, W, bias, padding, ...) or, for the overload with a residual (".binary"), (X, other, W, bias, ...)
        w_shape = args[0] if len(args) + 1 == len(fused.default._schema.arguments) else args[1]
        return conv_flop_count(x_shape, w_shape, out_shape)


def counted_flops(function) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        function()
    return counter.get_total_flops()


def engines(model, precision: str) -> dict[str, StyleTransfer]:
    options = {"gram": {"lbfgs": {"max_iter": GRAM_ITERATIONS}}}
    return {
        name: StyleTransfer(model, make_method(name, **options.get(name, {})), precision=precision) for name in METHODS
    }


def speed(model, repeats: int, precision: str, content_seconds: float) -> dict:
    """Median seconds per method, with the methods interleaved in every round so that a change in
    the machine's load touches all of them alike."""
    rate = model.sample_rate
    content, style = test_signal(content_seconds, rate, seed=0), test_signal(content_seconds, rate, seed=1)
    running = engines(model, precision)
    outputs = {name: engine(content, style) for name, engine in running.items()}  # warm-up; styles cached
    cached: dict[str, list[float]] = {name: [] for name in METHODS}
    uncached: dict[str, list[float]] = {name: [] for name in METHODS}
    for _ in range(repeats):
        for name, engine in running.items():
            seconds, result = timed(lambda engine=engine: engine(content, style))
            assert result.info["style_cached"]
            cached[name].append(seconds)
            engine._styles.clear()  # the next call analyses the style from scratch
            uncached[name].append(timed(lambda engine=engine: engine(content, style))[0])
    results = {}
    for name, engine in running.items():
        entry = {
            "seconds": statistics.median(cached[name]),
            "seconds_uncached": statistics.median(uncached[name]),
            # bf16 runs the same operations: counted in float32 only (under bf16 on a CPU without bf16 units, slowly)
            "flops": counted_flops(lambda engine=engine: engine(content, style)) if precision == "fp32" else 0,
        }
        if name == "gram":  # per iteration: the optimisation's evaluations (forward + backward through the encoder)
            evaluations = len(outputs[name].info["loss_curve"])
            cached[name] = [seconds / evaluations for seconds in cached[name]]
            entry = {key: value / evaluations for key, value in entry.items()}
            entry["evaluations_timed"] = evaluations
        entry["output"] = outputs[name].audio
        print(
            f"  {precision} {name}: {entry['seconds']:.3f} s (uncached {entry['seconds_uncached']:.3f} s)", flush=True
        )
        results[name] = entry
    for name, entry in results.items():
        entry["rtf"] = entry["seconds"] / content_seconds
        entry["rtf_uncached"] = entry["seconds_uncached"] / content_seconds
        # The median of each round's ratio: a shared machine's speed drifts by a third over minutes,
        # which a ratio of medians taken over all rounds would mistake for a difference between methods.
        per_round = [seconds / floor for seconds, floor in zip(cached[name], cached["identity"], strict=True)]
        entry["ratio_to_reconstruction"] = statistics.median(per_round)
        entry["gflops"] = entry["flops"] / entry["seconds"] / 1e9  # achieved GFLOP/s
        entry["gflop"] = entry.pop("flops") / 1e9
    return results


def peak_memory(model_source: str, seconds: float, folder: Path) -> float:
    """Peak RSS (MiB) of a fresh process that streams ``seconds`` of content through adain."""
    rate = 44100
    content, style = folder / f"content-{seconds}.wav", folder / "style.wav"
    if not style.exists():
        sf.write(style, test_signal(10.0, rate, seed=1), rate, subtype="PCM_16")
    with sf.SoundFile(content, "w", rate, 1, "PCM_16") as handle:
        for start in range(0, int(seconds * rate), 10 * rate):
            handle.write(test_signal(min(10.0, seconds - start / rate), rate, seed=0, start=start))
    command = [sys.executable, __file__, "--memory-probe", str(content), str(style), "--model", model_source]
    probe = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(probe.stdout.strip().splitlines()[-1])


def memory_probe(content: str, style: str, model_source: str) -> None:
    model = load_vqvae(model_source)
    engine = StyleTransfer(model, make_method("adain"))
    with tempfile.TemporaryDirectory() as folder:
        engine.transfer_file(content, style, Path(folder) / "out.wav")
    print(peak_rss_mib())


def peak_rss_mib() -> float:
    """This process's own peak RSS. Linux keeps ru_maxrss across fork and exec, so in a probe started by a
    benchmark holding gigabytes it reports the parent's peak; the address space's high-water mark (VmHWM)
    starts afresh with the exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)


TRAINING_SETTINGS = (
    ("full", "jukebox"),
    ("full", "mel"),
    ("decoder", "mel"),
    ("decoder, cached codes", "mel"),
    ("transfer_decoder, cached codes", "mel"),  # adain at every point toward each crop's style statistics
)
TRAINING_BATCH, TRAINING_CROP_SECONDS = 8, 1.0


def training_speed(model_source: str, repeats: int) -> dict:
    """Seconds per optimiser step of the pre-training module, each setting in turn every round."""
    from jukestyle_lightning.lightning_modules.vqvae_pretrain import VQVAEPretrainModule

    from jukestyle.losses import JukeboxLoss, MelLoss

    steps = {}
    for stage, loss_name in TRAINING_SETTINGS:
        loss = JukeboxLoss() if loss_name == "jukebox" else MelLoss()
        module_stage = stage.split(",")[0]
        module = VQVAEPretrainModule(load_vqvae(model_source), loss=loss, stage=module_stage, codebook_init="keep")
        rate = module.model.sample_rate
        length = int(TRAINING_CROP_SECONDS * rate) // 128 * 128
        crops = [test_signal(TRAINING_CROP_SECONDS, rate, seed)[:length] for seed in range(TRAINING_BATCH)]
        loss.calibrate(crops)
        if "cached" in stage:
            module.stage.encode_corpus(module.model, module.levels, crops, length, 128)
        indices = torch.arange(TRAINING_BATCH)
        audio = torch.from_numpy(np.stack(crops)[:, None])
        batch = {"audio": audio, "clip": indices, "start": indices * 0}
        if module_stage == "transfer_decoder":  # each crop's style: the next crop
            batch.update(style=audio.roll(1, 0), style_clip=indices.roll(1), style_start=indices * 0)
        optimizer = module.configure_optimizers()["optimizer"]

        def step(module=module, optimizer=optimizer, batch=batch) -> None:
            total, _, _ = module.batch_losses(batch, training=True)
            total.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        step()  # warm-up
        steps[f"{stage} / {loss_name}"] = (step, counted_flops(step))
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, (step, _) in steps.items():
            times[name].append(timed(step)[0])
    results = {}
    for name, (_, flops) in steps.items():
        seconds = statistics.median(times[name])
        results[name] = {"seconds": seconds, "steps_per_second": 1 / seconds, "gflop": flops / 1e9}
        results[name]["gflops"] = flops / seconds / 1e9
        print(f"  training {name}: {seconds:.3f} s per step, {results[name]['gflops']:.1f} GFLOP/s", flush=True)
    return results


def markdown(results: dict, meta: dict) -> str:
    lines = [
        "# Benchmarks",
        "",
        "`python scripts/benchmark.py`: 44.1 kHz content and a style of the same length at level 2 (the machine, "
        "model and rounds of each device are given under its heading). gram: per L-BFGS iteration. The floor is "
        "`identity`, the plain reconstruction of the same audio; `x reconstruction` is the median over rounds of "
        "each round's ratio (the methods take turns in every round). Times are end to end: loudness normalisation "
        "and the copy of the output to the host included.",
        "",
    ]
    for device, entries in results.items():
        if device in ("memory", "training"):
            continue
        about = meta[device]
        lines += [
            f"## {device}",
            "",
            f"{about['machine']}, model `{about['model']}`, {about['content_seconds']:.0f} s of content and style, "
            f"torch {about['torch']}, {about['threads']} CPU threads; {about['date']}. Medians of {about['repeats']} "
            f"rounds ({about['bf16_repeats']} under bf16).",
            "",
            "| method | seconds (style cached) | RTF | x reconstruction | seconds (uncached) | RTF (uncached) "
            "| GFLOP | GFLOP/s | bf16 seconds | bf16 l2-mfcc drift |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, entry in entries.items():
            bf16 = entry.get("bf16", {})
            lines.append(
                f"| {name} | {entry['seconds']:.3f} | {entry['rtf']:.3f} | {entry['ratio_to_reconstruction']:.2f} "
                f"| {entry['seconds_uncached']:.3f} | {entry['rtf_uncached']:.3f} | {entry['gflop']:.1f} "
                f"| {entry['gflops']:.1f} | {bf16.get('seconds', float('nan')):.3f} "
                f"| {bf16.get('l2mfcc_drift', float('nan')):.3g} |"
            )
        lines.append("")
    training = results.get("training", {})
    if training:
        about = meta.get("training", {})
        # a rate is comparable with the reconstruction's only when both were measured on the same kind of CPU
        same_machine = meta.get("cpu", {}).get("machine") == about.get("machine")
        floor = results.get("cpu", {}).get("identity", {}).get("gflops") if same_machine else None
        lines += [
            "## Training steps (cpu)",
            "",
            f"VQ-VAE pre-training at level 2: batch {TRAINING_BATCH} of {TRAINING_CROP_SECONDS:g} s crops, forward, "
            f"loss, backward and Adam step. {about.get('machine', '')}, {about.get('threads', '?')} threads, model "
            f"`{about.get('model', '?')}`; medians of {about.get('repeats', '?')} rounds; {about.get('date', '')}. "
            "FLOPs are counted by FlopCounterMode (forward and backward). The rate is compared with the "
            "reconstruction's above (no autograd, fused kernels) when both ran on the same kind of CPU.",
            "",
            "| stage / loss | seconds per step | steps/s | GFLOP per step | GFLOP/s | x reconstruction's rate |",
            "|---|---|---|---|---|---|",
        ]
        for name, entry in training.items():
            share = f"{entry['gflops'] / floor:.2f}" if floor else "-"
            lines.append(
                f"| {name} | {entry['seconds']:.3f} | {entry['steps_per_second']:.2f} | {entry['gflop']:.1f} "
                f"| {entry['gflops']:.1f} | {share} |"
            )
        lines.append("")
    cpu, memory = results.get("cpu", {}), results.get("memory", {})
    if cpu:  # the targets of the project's scale issue, checked against these numbers
        checks = [
            ("adain, style cached, <= 1.10 x reconstruction", cpu["adain"]["ratio_to_reconstruction"], 1.10),
            ("wct, style cached, <= 1.10 x reconstruction", cpu["wct"]["ratio_to_reconstruction"], 1.10),
            ("adain, style uncached, RTF <= 0.1", cpu["adain"]["rtf_uncached"], 0.1),
        ]
        if memory:
            checks.append(("peak RSS 10 min / 30 s <= 1.25", memory["ratio_10min_to_30s"], 1.25))
        lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {name} | {value:.3f} | {'yes' if value <= limit else 'no'} |" for name, value, limit in checks]
        lines.append("")
    if memory:
        lines += ["## Peak memory (adain, streamed from file)", "", "| content | peak RSS (MiB) |", "|---|---|"]
        lines += [
            f"| {k} | {v:.0f} |" for k, v in sorted(memory["peak_rss_mib"].items(), key=lambda kv: int(kv[0][:-1]))
        ]
        lines += ["", f"10 min / 30 s: {memory['ratio_10min_to_30s']:.3f}", ""]
    return "\n".join(lines)


def machine(device: torch.device) -> str:
    """The device in words: a GPU's name; a CPU's model, its widest vector instructions and its cores."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    vectors = [
        label for flag, label in (("amx_bf16", "AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags
    ]
    return ", ".join([name, *vectors[:2], f"{os.cpu_count()} cores"])


def earlier(path: Path) -> dict:
    """The results already on file, kept for the devices (and memory runs) this run does not measure."""
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    meta = saved.get("meta", {})
    if "machine" in meta:  # a file of the earlier single-device layout: its meta described the CPU run
        meta = {"cpu": meta}
    return {**saved, "meta": meta}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--seconds", type=float, default=10.0, help="content and style duration")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds in float32")
    parser.add_argument("--bf16-repeats", type=int, default=3, help="timed rounds under bf16 autocast")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--devices", nargs="+", choices=("cpu", "gpu"), help="devices to time (default: cpu, and gpu where present)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--training-only", action="store_true", help="time the training steps only")
    parser.add_argument("--training-repeats", type=int, default=5, help="timed rounds of training steps")
    parser.add_argument("--memory-probe", nargs=2, metavar=("CONTENT", "STYLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_cpu(threads=args.threads)  # as every entry point of the project does
    if args.memory_probe:
        memory_probe(*args.memory_probe, args.model)
        return

    count_fused_convolutions()
    results = earlier(args.output)
    meta = results.pop("meta", {})
    if args.training_repeats > 0:
        print("cpu: timing training steps", flush=True)
        results["training"] = training_speed(args.model, args.training_repeats)
        meta["training"] = {
            "model": args.model,
            "repeats": args.training_repeats,
            "threads": torch.get_num_threads(),
            "machine": machine(torch.device("cpu")),
            "date": time.strftime("%Y-%m-%d"),
        }
    if args.training_only:
        write_json(args.output, {**results, "meta": meta})
        write_text(args.output.parent / "README.md", markdown(results, meta) + "\n")
        print(f"wrote {args.output} and {args.output.parent / 'README.md'}")
        return
    names = args.devices or ["cpu", *(["gpu"] if torch.cuda.is_available() else [])]
    if "gpu" in names and not torch.cuda.is_available():
        parser.error("--devices gpu: torch sees no CUDA device on this machine")
    devices = {name: torch.device("cuda" if name == "gpu" else "cpu") for name in names}
    model = load_vqvae(args.model)
    for key, device in devices.items():
        print(f"{key}: timing {', '.join(METHODS)}", flush=True)
        model.to(device)
        entries = speed(model, args.repeats, "fp32", args.seconds)
        low = speed(model, args.bf16_repeats, "bf16", args.seconds)
        for name, entry in entries.items():
            reference = entry.pop("output")
            output = low[name].pop("output")
            drift = l2_mfcc(output, reference, model.sample_rate)
            entry["bf16"] = {"seconds": low[name]["seconds"], "l2mfcc_drift": drift}
        results[key] = entries
        meta[key] = {
            "model": args.model,
            "content_seconds": args.seconds,
            "repeats": args.repeats,
            "bf16_repeats": args.bf16_repeats,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": machine(device),
            "date": time.strftime("%Y-%m-%d"),
        }
    model.to("cpu")
    if not args.no_memory:
        with tempfile.TemporaryDirectory() as folder:
            peaks = {}
            for seconds in MEMORY_SECONDS:
                peaks[f"{seconds}s"] = peak_memory(args.model, seconds, Path(folder))
                print(f"  peak RSS for {seconds} s of content: {peaks[f'{seconds}s']:.0f} MiB", flush=True)
        results["memory"] = {
            "peak_rss_mib": peaks,
            "ratio_10min_to_30s": peaks["600s"] / peaks["30s"],
        }
    write_json(args.output, {**results, "meta": meta})
    write_text(args.output.parent / "README.md", markdown(results, meta) + "\n")
    print(f"wrote {args.output} and {args.output.parent / 'README.md'}")


if __name__ == "__main__":
    main()
