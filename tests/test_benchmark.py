"""scripts/benchmark.py: the peak memory of a probe process is its own, not its parent's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from project import REPO, script

from jukestyle.jukebox import build_vqvae, kernels, save_checkpoint

PROBE = f"import runpy; print(runpy.run_path({str(REPO / 'scripts' / 'benchmark.py')!r})['peak_rss_mib']())"


@pytest.mark.slow  # a probe process
def test_a_probe_reports_its_own_peak_memory_not_its_parents():
    held = torch.ones(1024 * 2**20 // 4)  # this process holds 1 GiB when it starts the probe
    own = float(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout)
    assert held.sum() > 0
    # the probe imports torch and the project (a few hundred MiB); Linux's ru_maxrss would report over 1 GiB here
    assert 50 < own < 1024


def test_results_of_devices_not_timed_are_kept_and_described_under_their_own_heading(tmp_path):
    benchmark = script("benchmark")

    entry = {
        "seconds": 0.7,
        "rtf": 0.07,
        "ratio_to_reconstruction": 1.0,
        "seconds_uncached": 0.7,
        "rtf_uncached": 0.07,
        "gflop": 39.3,
        "gflops": 56.0,
    }
    about = {
        "model": "bundled",
        "content_seconds": 10.0,
        "repeats": 9,
        "bf16_repeats": 3,
        "threads": 2,
        "torch": "2.13.0",
        "date": "2026-11-22",
    }
    old = tmp_path / "results.json"  # the single-device layout: meta described the CPU run
    methods = {name: entry for name in benchmark.METHODS}
    old.write_text(json.dumps({"cpu": methods, "meta": {**about, "machine": "x86_64, 2 cores"}}))
    kept = benchmark.earlier(old)
    assert kept["meta"] == {"cpu": {**about, "machine": "x86_64, 2 cores"}}
    results = {"cpu": kept["cpu"], "gpu": {"identity": {**entry, "seconds": 0.04}}}
    meta = {**kept["meta"], "gpu": {**about, "machine": "NVIDIA H100 80GB HBM3", "threads": 16}}
    text = benchmark.markdown(results, meta)
    cpu, gpu = text.split("## gpu")
    assert "x86_64, 2 cores" in cpu and "| identity | 0.700 |" in cpu
    assert "adain, style cached, <= 1.10 x reconstruction | 1.000 | yes" in gpu  # the targets follow the last device
    assert "NVIDIA H100 80GB HBM3" in gpu and "16 CPU threads" in gpu and "| identity | 0.040 |" in gpu
    assert benchmark.earlier(tmp_path / "absent.json") == {}


def test_flops_of_the_fused_convolutions_are_counted(tiny_model, tone):
    """The GFLOP column counts the residual blocks' fused oneDNN convolutions like aten's own."""
    benchmark = script("benchmark")

    x = torch.as_tensor(tone).reshape(1, 1, -1)

    def reconstruct():
        with torch.inference_mode():
            tiny_model.reconstruct(x, 2)

    benchmark.count_fused_convolutions()
    fused = benchmark.counted_flops(reconstruct)
    plain_convolutions, kernels.FUSED_CONVOLUTION = kernels.FUSED_CONVOLUTION, None
    try:
        plain = benchmark.counted_flops(reconstruct)
    finally:
        kernels.FUSED_CONVOLUTION = plain_convolutions
    assert plain > 0 and fused == plain


def test_training_steps_are_timed_and_the_decoder_stage_counts_fewer_flops(tmp_path):
    benchmark = script("benchmark")

    path, model = tmp_path / "tiny.pth.tar", build_vqvae("tiny", seed=0)
    save_checkpoint(path, model)
    results = benchmark.training_speed(str(path), repeats=1)
    assert list(results) == [
        "full / jukebox", "full / mel", "decoder / mel", "decoder, cached codes / mel",
        "transfer_decoder, cached codes / mel",
    ]  # fmt: skip
    assert all(entry["seconds"] > 0 and entry["gflop"] > 0 for entry in results.values())
    # The decoder stage skips the encoder's backward pass and the gradients into the latent (3.8 encoder forward
    # passes on the tiny model); where oneDNN's fused inference kernels run the frozen encoder, the counter does not
    # see its forward pass either (one more).
    crops = torch.zeros(benchmark.TRAINING_BATCH, 1, 44032)
    with torch.no_grad():
        encoder_forward = benchmark.counted_flops(lambda: model.encode_latent(crops, 2)) / 1e9
    saved = results["full / mel"]["gflop"] - results["decoder / mel"]["gflop"]
    assert 1.5 * encoder_forward < saved < 6 * encoder_forward
    meta = {"training": {"model": "tiny", "repeats": 1, "threads": 1, "machine": "test", "date": "today"}}
    text = benchmark.markdown({"training": results}, meta)
    assert "## Training steps (cpu)" in text and "| decoder / mel |" in text
    # ... and with the codes computed once, the encoder's forward pass too.
    cached = results["decoder / mel"]["gflop"] - results["decoder, cached codes / mel"]["gflop"]
    assert 0.9 * encoder_forward < cached < 1.1 * encoder_forward
    # A transfer decoder's step also decodes each style (the frozen decoder, no backward): more than a plain step.
    assert results["transfer_decoder, cached codes / mel"]["gflop"] > results["decoder, cached codes / mel"]["gflop"]
