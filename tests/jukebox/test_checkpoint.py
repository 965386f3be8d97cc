"""Checkpoint files: the official format, safe loading, bad files, and downloads from a local server."""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib
import pickle
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from jukestyle.errors import CheckpointError
from jukestyle.fileio import sha256_file
from jukestyle.jukebox import build_vqvae, load_vqvae, read_checkpoint, save_checkpoint
from jukestyle.jukebox import download as download_module
from jukestyle.jukebox import factory as factory_module

# Jukebox's own Hyperparams class, written to a `jukebox/hparams.py` on disk so that
# pickle records it exactly as the official file does: `jukebox.hparams.Hyperparams`.
JUKEBOX_HPARAMS_SOURCE = """
class Hyperparams(dict):
    def __getattr__(self, attr):
        return self[attr]

    def __setattr__(self, attr, value):
        self[attr] = value
"""


@contextlib.contextmanager
def jukebox_hparams_class(folder: Path):
    """Import a `jukebox.hparams` module written under ``folder``; remove it again afterwards."""
    package = folder / "jukebox"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "hparams.py").write_text(JUKEBOX_HPARAMS_SOURCE)
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("jukebox.hparams").Hyperparams
    finally:
        sys.path.remove(str(folder))
        for name in ("jukebox.hparams", "jukebox"):
            sys.modules.pop(name, None)


@pytest.fixture
def jukebox_hparams(tmp_path):
    with jukebox_hparams_class(tmp_path / "fake_site") as hyperparams:
        yield hyperparams


def official_format_file(path: Path, model, hyperparams_class, legacy: bool) -> Path:
    """A checkpoint laid out like Jukebox's vqvae.pth.tar: Hyperparams, DataParallel keys, step."""
    hps = hyperparams_class()
    for key, value in model.config.to_hparams().items():
        setattr(hps, key, value)
    hps.sample_length = 393216  # training-only keys ride along in the official hps
    hps.lr = 0.0003
    checkpoint = {
        "hps": hps,
        "model": {f"module.{key}": value for key, value in model.state_dict().items()},
        "opt": None,
        "step": 123,
    }
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    return path


def assert_same_model(loaded, original) -> None:
    assert loaded.config == original.config
    loaded_state = loaded.state_dict()
    for key, value in original.state_dict().items():
        assert torch.equal(loaded_state[key], value), key


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_official_format_loads_with_weights_only(tmp_path, tiny_model, jukebox_hparams, monkeypatch, legacy):
    path = official_format_file(tmp_path / "vqvae.pth.tar", tiny_model, jukebox_hparams, legacy)
    seen = []
    real_load = torch.load

    def spying_load(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spying_load)
    loaded = load_vqvae(path)
    assert seen == [True]
    assert_same_model(loaded, tiny_model)
    assert loaded.origin.step == 123
    assert type(read_checkpoint(path)["hps"]) is dict


def test_save_checkpoint_round_trips_config_and_outputs(tmp_path, tiny_model, tone):
    path = tmp_path / "model.pth.tar"
    save_checkpoint(path, tiny_model, step=7)
    loaded = load_vqvae(str(path))
    assert_same_model(loaded, tiny_model)
    assert loaded.origin.step == 7 and not loaded.training
    x = torch.from_numpy(tone[:4096]).view(1, 1, -1)
    assert torch.equal(loaded.reconstruct(x, 1), tiny_model.reconstruct(x, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth.tar"]  # no temporary file left


def test_bare_state_dict_of_the_5b_architecture_loads(tmp_path):
    model = build_vqvae("jukebox_5b", seed=3)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    assert_same_model(load_vqvae(tmp_path / "weights.pt"), model)


class NotAllowed:
    pass


def test_arbitrary_pickled_objects_are_refused(tmp_path, tiny_model):
    torch.save({"model": tiny_model.state_dict(), "payload": NotAllowed()}, tmp_path / "bad.pth.tar")
    with pytest.raises(CheckpointError, match=r"bad\.pth\.tar: refuses to unpickle test_checkpoint\.NotAllowed"):
        load_vqvae(tmp_path / "bad.pth.tar")


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_truncated_file(tmp_path, tiny_model, legacy, keep):
    path = tmp_path / "cut.pth.tar"
    torch.save({"model": tiny_model.state_dict()}, path, _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"cut\.pth\.tar: truncated or corrupt checkpoint") as error:
        load_vqvae(path)
    assert "\n" not in str(error.value)


def _save_state(path: Path, state: dict) -> Path:
    torch.save({"model": state}, path)
    return path


def test_missing_unexpected_and_misshapen_keys(tmp_path, tiny_model):
    state = dict(tiny_model.state_dict())
    del state["decoders.2.out.weight"]
    state["decoders.2.extra.weight"] = torch.zeros(1)
    state["bottleneck.level_blocks.0.k"] = torch.zeros(16, 8)
    # Keep the tiny model's hps so that the weights are checked against the tiny architecture.
    save_checkpoint(tmp_path / "ok.pth.tar", tiny_model)
    checkpoint = read_checkpoint(tmp_path / "ok.pth.tar")
    checkpoint["model"] = state
    torch.save(checkpoint, tmp_path / "broken.pth.tar")
    with pytest.raises(CheckpointError) as error:
        load_vqvae(tmp_path / "broken.pth.tar")
    message = str(error.value)
    assert "broken.pth.tar: does not fit the VQ-VAE" in message
    assert "1 missing keys (decoders.2.out.weight)" in message
    assert "1 unexpected keys (decoders.2.extra.weight)" in message
    assert "1 wrong shapes (bottleneck.level_blocks.0.k (16, 8) where the model has (32, 8))" in message


def test_tiny_weights_do_not_fit_the_5b_model(tmp_path, tiny_model):
    path = _save_state(tmp_path / "tiny_as_5b.pt", tiny_model.state_dict())
    with pytest.raises(CheckpointError, match=r"does not fit the VQ-VAE: \d+ missing keys .* and \d+ more"):
        load_vqvae(path)


def test_non_finite_weights(tmp_path, tiny_model):
    save_checkpoint(tmp_path / "nan.pth.tar", tiny_model)
    checkpoint = read_checkpoint(tmp_path / "nan.pth.tar")
    checkpoint["model"]["decoders.0.out.bias"] = torch.full_like(
        checkpoint["model"]["decoders.0.out.bias"], float("nan")
    )
    torch.save(checkpoint, tmp_path / "nan.pth.tar")
    with pytest.raises(CheckpointError, match=r"nan\.pth\.tar: non-finite values in decoders\.0\.out\.bias"):
        load_vqvae(tmp_path / "nan.pth.tar")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (torch.zeros(3), "expected a dict with a 'model' state dict, found Tensor"),
        ({"step": 3}, "no model weights found"),
        ({"model": {"a": 1}}, "model entry 'a' is a int, not a tensor"),
    ],
)
def test_wrong_content(tmp_path, content, message):
    torch.save(content, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=re.escape(f"odd.pt: {message}")):
        load_vqvae(tmp_path / "odd.pt")


def test_unknown_sources(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match=r"nope\.pt: no such checkpoint file, URL or pre-trained model name"):
        load_vqvae("nope.pt")
    with pytest.raises(CheckpointError, match=r"preset 'tiny' has no pre-trained weights; build_vqvae\('tiny'\)"):
        load_vqvae("tiny")
    monkeypatch.setattr(factory_module, "BUNDLED_CHECKPOINT", tmp_path / "absent.pth.tar")
    with pytest.raises(CheckpointError, match=r"the bundled checkpoint .*absent\.pth\.tar is missing"):
        load_vqvae("bundled")


# -- downloads ------------------------------------------------------------------------------------


@pytest.fixture
def file_server(tmp_path):
    """An HTTP server on localhost serving tmp_path/served; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port_url() -> str:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/jukebox/models/5b/vqvae.pth.tar"


@pytest.fixture(scope="module")
def official_5b_file(tmp_path_factory):
    """A random 5b-architecture model in the official file format (the real one is 7.4 MB)."""
    model = build_vqvae("jukebox_5b", seed=5)
    with jukebox_hparams_class(tmp_path_factory.mktemp("site")) as hyperparams:
        path = official_format_file(
            tmp_path_factory.mktemp("official") / "vqvae.pth.tar", model, hyperparams, legacy=True
        )
    return model, path


def test_official_checkpoint_downloads_verifies_and_caches(official_5b_file, file_server, monkeypatch):
    model, path = official_5b_file
    folder, base_url = file_server
    (folder / "vqvae.pth.tar").write_bytes(path.read_bytes())
    remote = download_module.RemoteFile(f"{base_url}/vqvae.pth.tar", sha256_file(path), 7.4)
    monkeypatch.setitem(download_module.OFFICIAL_CHECKPOINTS, "jukebox_5b", remote)
    assert_same_model(load_vqvae("jukebox_5b"), model)
    cached = download_module.cache_dir() / "jukebox_5b" / "vqvae.pth.tar"
    assert sha256_file(cached) == remote.sha256
    # Offline afterwards: the verified cached copy is used.
    monkeypatch.setitem(
        download_module.OFFICIAL_CHECKPOINTS, "jukebox_5b", remote.__class__(_closed_port_url(), remote.sha256, 7.4)
    )
    assert_same_model(load_vqvae("jukebox_5b"), model)
    # A corrupted cached copy is replaced by a fresh download.
    monkeypatch.setitem(download_module.OFFICIAL_CHECKPOINTS, "jukebox_5b", remote)
    cached.write_bytes(b"garbage")
    assert_same_model(load_vqvae("jukebox_5b"), model)
    assert sha256_file(cached) == remote.sha256


def test_offline_without_cached_file_says_where_to_put_it(monkeypatch):
    remote = download_module.RemoteFile(
        _closed_port_url(), "69745413a48e887f8a3fe91b972a6f7f434021a1ce911a99187b331eb48c059a", 7.4
    )
    monkeypatch.setitem(download_module.OFFICIAL_CHECKPOINTS, "jukebox_5b", remote)
    with pytest.raises(CheckpointError) as error:
        load_vqvae("jukebox_5b")
    message = str(error.value)
    expected_place = download_module.cache_dir() / "jukebox_5b" / "vqvae.pth.tar"
    assert "\n" not in message
    assert message.startswith(f"cannot download {remote.url}: ")
    assert f"put vqvae.pth.tar (7.4 MB, sha256 {remote.sha256}) at {expected_place}" in message


def test_offline_switch_forbids_downloads(file_server, tiny_model, monkeypatch):
    folder, base_url = file_server
    save_checkpoint(folder / "mine.pth.tar", tiny_model)
    monkeypatch.setenv("JUKESTYLE_OFFLINE", "1")
    with pytest.raises(CheckpointError, match=r"cannot download .*mine\.pth\.tar: JUKESTYLE_OFFLINE is set"):
        load_vqvae(f"{base_url}/mine.pth.tar")


def test_checksum_mismatch_keeps_nothing(official_5b_file, file_server, monkeypatch):
    _, path = official_5b_file
    folder, base_url = file_server
    (folder / "vqvae.pth.tar").write_bytes(path.read_bytes()[:-10] + b"0123456789")
    remote = download_module.RemoteFile(f"{base_url}/vqvae.pth.tar", sha256_file(path), 7.4)
    monkeypatch.setitem(download_module.OFFICIAL_CHECKPOINTS, "jukebox_5b", remote)
    with pytest.raises(
        CheckpointError, match=f"has sha256 [0-9a-f]{{64}}, expected {remote.sha256}; the file was not kept"
    ):
        load_vqvae("jukebox_5b")
    folder_in_cache = download_module.cache_dir() / "jukebox_5b"
    assert not folder_in_cache.exists() or not any(folder_in_cache.iterdir())


def test_any_url_with_optional_checksum(tmp_path, tiny_model, file_server):
    folder, base_url = file_server
    save_checkpoint(folder / "mine.pth.tar", tiny_model)
    digest = sha256_file(folder / "mine.pth.tar")
    assert_same_model(load_vqvae(f"{base_url}/mine.pth.tar#sha256={digest}"), tiny_model)
    (folder / "mine.pth.tar").unlink()  # now served no more: the cached copy answers
    assert_same_model(load_vqvae(f"{base_url}/mine.pth.tar#sha256={digest}"), tiny_model)
    save_checkpoint(tmp_path / "local.pth.tar", tiny_model)
    assert_same_model(load_vqvae((tmp_path / "local.pth.tar").as_uri()), tiny_model)
    with pytest.raises(CheckpointError, match="does not match the sha256 given in the URL"):
        load_vqvae((tmp_path / "local.pth.tar").as_uri() + "#sha256=" + "0" * 64)


def test_a_model_carries_its_origin():
    """What a run records of a model, and what a fine-tune carries on, is part of the model object."""
    bundled = load_vqvae("bundled")
    assert bundled.origin.source == "bundled" and bundled.origin.step > 0
    assert bundled.origin.trained_levels == (0, 1, 2) and len(bundled.origin.lineage) == 4
    random = build_vqvae("tiny", seed=3)
    assert random.origin.source == "random:tiny:seed=3" and random.origin.trained_levels == ()


def test_an_unpinned_url_prints_its_sha256_so_that_it_can_be_pinned(tiny_model, file_server, capsys):
    folder, base_url = file_server
    save_checkpoint(folder / "unpinned.pth.tar", tiny_model)
    digest = sha256_file(folder / "unpinned.pth.tar")
    assert_same_model(load_vqvae(f"{base_url}/unpinned.pth.tar"), tiny_model)
    assert f"pin it with {base_url}/unpinned.pth.tar#sha256={digest}" in capsys.readouterr().err


def test_the_bundled_file_is_checked_on_load(tmp_path, monkeypatch):
    damaged = tmp_path / "jukestyle_gm.pth.tar"
    original = factory_module.BUNDLED_CHECKPOINT.read_bytes()
    damaged.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    monkeypatch.setattr(factory_module, "BUNDLED_CHECKPOINT", damaged)
    with pytest.raises(CheckpointError, match=r"jukestyle_gm\.pth\.tar: sha256 [0-9a-f]{16}\.\.\. is not the bundled"):
        load_vqvae("bundled")


def test_a_file_of_another_kind_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, np.zeros(100, dtype=np.float32), 44100)
    with pytest.raises(CheckpointError) as raised:
        load_vqvae(path)
    expected = "not a torch checkpoint (neither the zip nor the legacy format torch.save writes)"
    assert str(raised.value) == f"{path}: {expected}"


def test_a_plain_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth.tar"
    path.write_bytes(pickle.dumps({"notes": [1, 2, 3]}, protocol=4))
    with pytest.raises(CheckpointError) as raised:
        load_vqvae(path)
    assert str(raised.value) == f"{path}: not a torch checkpoint (a pickle that torch.load cannot read safely)"
