"""The ``jukestyle`` command: style transfer on your own files, from any folder.

    jukestyle transfer CONTENT STYLE -o OUT.wav [--method adain] [--alpha 0.5] [--level 1] [--decoder bundled]
    jukestyle compare CONTENT STYLE -o FOLDER [--methods identity,codebook,adain,wct,decoder]
    jukestyle methods
    jukestyle train-decoder AUDIO_DIR -o decoder.pth.tar [-- <Hydra overrides>]
    jukestyle run <Hydra overrides>          # = python scripts/run.py <overrides>, from any folder
    jukestyle explore                         # the app (Streamlit)

Any length and format go in (files are read and written in windows, through ``jukestyle.transfer_file``);
a bad input ends in one line naming the file and the problem. Exit codes: 0 done, 1 a bad input or setting,
2 a bad command line. ``run``, ``train-decoder`` and ``explore`` use the framework's scripts and configs, installed
with the package as ``jukestyle_lightning``; from an install, runs go to ``outputs/`` of the current folder.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import inspect
import json
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

from jukestyle.api import transfer_file
from jukestyle.audio.io import AudioWarning, load_audio, require_audio_file
from jukestyle.errors import ConfigError, JukestyleError
from jukestyle.evaluation.metrics import analyse_reference
from jukestyle.evaluation.scoreboard import Measurement, measure, print_value
from jukestyle.evaluation.timbre import shipped_metric
from jukestyle.fileio import atomic_path, write_text
from jukestyle.jukebox.config import MODEL_SAMPLE_RATE
from jukestyle.methods import METHODS

# What each method's settings mean and the values they take (the methods check them; --help lists them).
SETTINGS = {
    "level": "VQ-VAE level 0-2 (default: the model's transfer level, 1 for the bundled model)",
    "alpha": "0-1: how much of the style's statistics replace the content's (1: all)",
    "points": "where features are changed: all | latent | blocks | level_blocks",
    "eps": "> 0: added to variances",
    "cutoff": "0 to < 1: share of the largest eigenvalue under which WCT drops a component",
    "decoder": "a transfer decoder: bundled, or a file of experiment=train_transfer_decoder",
    "checkpoint": "a per-instrument decoder file, or a folder of <instrument>.pth.tar (default: the bundled ones)",
    "content_weight": ">= 0: weight of the content term of the input optimisation",
    "layers": "{level: all | [encoder block names]}: where Gram matrices are matched",
    "layer_weights": '{"level:block": weight >= 0} (default 1 each)',
    "lbfgs": "{max_iter, tolerance_grad, tolerance_change, history_size}: L-BFGS settings",
    "output": "raw | decoded: the optimised waveform, or it through the VQ-VAE",
}
# Not by default: gram optimises the input (about 3.5x the content's duration on a 2-core CPU: 66 s for 18 s), and
# decoder needs a style named after an instrument it has a decoder for.
COMPARE_DEFAULT = ("identity", "codebook", "adain", "wct")
NAMED_SETTINGS = ("alpha", "decoder", "checkpoint")  # settings `transfer` takes as options of their own


def method_settings(name: str) -> list[tuple[str, object]]:
    """(setting, default) of a method, as its constructor takes them."""
    parameters = inspect.signature(METHODS[name].__init__).parameters.values()
    return [(p.name, p.default) for p in parameters if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]


def methods_help() -> str:
    lines = ["methods and their settings (--set NAME=VALUE, or the options below):"]
    for name in METHODS:
        lines.append(f"  {name}")
        for setting, default in method_settings(name):
            about = SETTINGS.get(setting, "")
            # the level's default is the model's (the API's), not the constructor's
            known = default not in (inspect.Parameter.empty, None) and setting != "level"
            shown = f" (default {default})" if known else ""
            lines.append(f"      {setting}{shown}: {about}".rstrip(": "))
    return "\n".join(lines)


def _value(text: str) -> object:
    """A --set value: JSON where it parses (numbers, lists, null), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _options(args: argparse.Namespace) -> tuple[dict, int | None]:
    """The method's settings (from --set and the options named after them), each one it takes, and the level."""
    options = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected NAME=VALUE")
        options[key] = _value(value)
    for name in NAMED_SETTINGS:
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    settings = [name for name, _ in method_settings(args.method)]
    for name in options:
        if name not in settings:
            flag = f"--{name}" if name in NAMED_SETTINGS else f"--set {name}"
            raise ConfigError(f"{flag}: not a setting of {args.method}; its settings: {', '.join(settings)}")
    level = options.pop("level", args.level)
    if args.level is not None and level != args.level:
        raise ConfigError(f"--level {args.level} and --set level={level} disagree; give one")
    return options, level


class Progress:
    """A one-line bar on stderr for long files (shown from the second window on, only on a terminal)."""

    def __init__(self, label: str, stream=sys.stderr) -> None:
        self.label, self.stream, self.started = label, stream, time.perf_counter()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if total < 2 or not self.stream.isatty():
            return
        width = 30
        filled = round(width * done / total)
        elapsed = time.perf_counter() - self.started
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({elapsed:.0f} s)")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")


def run_transfer(content: str, style: str, output: Path, method: str, model: str, level, options: dict) -> dict:
    progress = Progress(f"{method}: {Path(content).name}")
    try:
        return transfer_file(
            content, style, output, method=method, model=model, level=level, progress=progress, **options
        )
    finally:
        progress.close()


def command_transfer(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix.lower() != ".wav":
        raise ConfigError(f"{output}: the output is written as .wav; name it <name>.wav")
    options, level = _options(args)
    info = run_transfer(args.content, args.style, output, args.method, args.model, level, options)
    print(f"wrote {output} ({args.method}, {info['seconds']['total']:.1f} s)")
    return 0


def command_compare(args: argparse.Namespace) -> int:
    """Every method on one pair, and a page that plays them side by side beside their metrics."""
    folder = Path(args.output)
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        problem = f"unknown method {unknown[0]!r}" if unknown else "no method named"
        raise ConfigError(f"--methods: {problem}; methods: {', '.join(METHODS)}")
    for path in (args.content, args.style):
        require_audio_file(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder (compare writes a folder: <method>.wav, index.html)")
    inputs = {}
    for role, path in (("content", args.content), ("style", args.style)):
        # copied beside the page (so that the folder can be moved), under its own name (the decoder method
        # takes the style's instrument from it); a file already there (compare run again on it) stays
        inputs[role] = folder / role / Path(path).name
        try:
            inputs[role].parent.mkdir(parents=True, exist_ok=True)
            if not inputs[role].exists() or not inputs[role].samefile(path):
                shutil.copyfile(path, inputs[role])
        except OSError as error:
            raise ConfigError(f"{inputs[role]}: cannot write here ({error.strerror or error})") from None
    rate = MODEL_SAMPLE_RATE
    audio = {role: load_audio(path, rate) for role, path in inputs.items()}
    metric = shipped_metric()
    references = {role: analyse_reference(samples, rate, timbre_metric=metric) for role, samples in audio.items()}
    rows = []
    for method in methods:
        output = folder / f"{method}.wav"
        try:
            run_transfer(str(inputs["content"]), str(inputs["style"]), output, method, args.model, args.level, {})
        except JukestyleError as error:  # e.g. no per-instrument decoder for this style: a row that says so
            rows.append({"method": method, "error": str(error)})
            print(str(error) if str(error).startswith(f"{method}:") else f"{method}: {error}", file=sys.stderr)
            continue
        measured = Measurement(load_audio(output, rate), references["content"], references["style"], rate, metric)
        rows.append({"method": method, "file": output.name, **measure(measured)})
        print(f"{method}: wrote {output}")
    write_text(folder / "index.html", compare_page(inputs, rows))
    print(f"wrote {folder / 'index.html'}")
    return 0 if any("file" in row for row in rows) else 1


PAGE_COLUMNS = (
    ("closer_to", "nearer by l2-mfcc", "style_win_rate"),
    ("timbre_closer_to", "nearer by timbre", "timbre_win_rate"),
    ("timbre_style", "timbre distance to the style", "timbre_style"),
    ("pitch_accuracy", "pitch kept", "pitch_accuracy"),
    ("chroma_similarity", "chroma similarity", "chroma_similarity"),
)


def compare_page(inputs: dict[str, Path], rows: list[dict]) -> str:
    """A page with a player per input and per method, the method's metrics beside it; links relative to it."""

    def relative(path: Path) -> str:
        return f"{path.parent.name}/{path.name}"

    def player(name: str) -> str:
        return f'<audio controls preload="none" src="{html.escape(name)}"></audio>'

    def cell(row: dict, key: str, summary: str) -> str:
        value = row.get(key)
        if key.endswith("closer_to"):
            return "-" if value is None else {"source": "content"}.get(value, value)
        return html.escape(print_value(value, summary))

    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in PAGE_COLUMNS)
    body = []
    for row in rows:
        if "error" in row:
            body.append(
                f"<tr><td>{html.escape(row['method'])}</td><td colspan='6'>{html.escape(row['error'])}</td></tr>"
            )
            continue
        cells = "".join(f"<td>{cell(row, key, summary)}</td>" for key, _, summary in PAGE_COLUMNS)
        body.append(f"<tr><td>{html.escape(row['method'])}</td><td>{player(row['file'])}</td>{cells}</tr>")
    return "\n".join(
        [
            "<!doctype html>",
            '<html><head><meta charset="utf-8"><title>jukestyle compare</title>',
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left}</style>",
            "</head><body>",
            "<h1>jukestyle: every method on one pair</h1>",
            f"<p>content {player(relative(inputs['content']))} style {player(relative(inputs['style']))}</p>",
            f"<table><tr><th>method</th><th>output</th>{head}</tr>",
            *body,
            "</table>",
            "<p>l2-mfcc: the paper's timbre distance; timbre: the learned timbre metric (cosine distance of "
            "embeddings); pitch kept: share of the content's voiced frames within 50 cents (single notes only).</p>",
            "</body></html>",
            "",
        ]
    )


def framework_script(name: str) -> Path:
    """A script of the framework (``scripts/`` of the clone, installed as ``jukestyle_lightning.scripts``; its
    configs and the paper's recordings lie beside it)."""
    spec = importlib.util.find_spec(f"jukestyle_lightning.scripts.{name}")
    if spec is None or spec.origin is None:
        raise ConfigError(f"jukestyle: the framework's {name}.py is not installed; reinstall with pip install <clone>")
    return Path(spec.origin)


def hand_on(command: list[str]) -> int:
    """Run ``command`` as a child and return its exit status. A SIGTERM or SIGHUP that ends this command (a job
    system, ``kill``, a closed terminal) is passed on, and the child is waited for, so that it stops as a run stops
    (saving what it had) and is never left running alone. Ctrl-C reaches the child from the terminal itself: here
    it is ignored until the child has ended."""
    child = subprocess.Popen(command)
    forwarded = (signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.signal(number, lambda number, _: child.send_signal(number)) for number in forwarded}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def command_run(args: argparse.Namespace) -> int:
    """The framework's one entry point, from any folder: runs go to outputs/ of the clone (from an install: of the
    current folder), or to hydra.run.dir."""
    return hand_on([sys.executable, str(framework_script("run")), *args.overrides])


def command_explore(args: argparse.Namespace) -> int:
    return hand_on([sys.executable, "-m", "streamlit", "run", str(framework_script("app")), *args.streamlit])


def command_train_decoder(args: argparse.Namespace) -> int:
    """``experiment=train_decoder`` on a folder of one instrument's recordings; the decoder is copied to ``-o``."""
    folder, output = Path(args.audio_dir).resolve(), Path(args.output).resolve()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder (a folder of one instrument's recordings)")
    if not output.name.endswith(".pth.tar"):
        raise ConfigError(f"{output}: a decoder is written as <name>.pth.tar")
    run = output.parent / f"{output.name.removesuffix('.pth.tar')}_run"
    overrides = ["experiment=train_decoder", f"data.root={folder}", f"hydra.run.dir={run}", *args.overrides]
    code = hand_on([sys.executable, str(framework_script("run")), *overrides])
    exported = run / "decoder.pth.tar"
    if code != 0 or not exported.is_file():
        return code or 1
    with atomic_path(output) as tmp:
        shutil.copyfile(exported, tmp)
    print(f"wrote {output} (the run, resumable with the same command: {run})")
    return 0


def parser() -> argparse.ArgumentParser:
    listed = {"epilog": methods_help(), "formatter_class": argparse.RawDescriptionHelpFormatter}
    top = argparse.ArgumentParser(
        prog="jukestyle",
        description="Put the timbre of a style recording onto a content recording (Jukebox's VQ-VAE).",
        **listed,
    )
    commands = top.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("content", help="the music to keep (any length, any format libsndfile reads)")
        sub.add_argument("style", help="the recording whose timbre to take")
        sub.add_argument("--model", default="bundled", help="bundled, jukebox_5b, or a checkpoint (default bundled)")
        sub.add_argument("--level", type=int, choices=(0, 1, 2), help="VQ-VAE level (default: the model's)")

    transfer = commands.add_parser("transfer", help="one method on one pair", **listed)
    common(transfer)
    transfer.add_argument("-o", "--output", required=True, help="the output .wav (appears only when complete)")
    transfer.add_argument("--method", default="adain", choices=list(METHODS), help="default adain")
    transfer.add_argument("--alpha", type=float, help=SETTINGS["alpha"])
    transfer.add_argument("--decoder", help=SETTINGS["decoder"])
    transfer.add_argument("--checkpoint", help="decoder method: " + SETTINGS["checkpoint"])
    transfer.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="any setting of the method")
    transfer.set_defaults(run=command_transfer)

    compare = commands.add_parser("compare", help="every method on one pair, with a page playing them", **listed)
    common(compare)
    compare.add_argument("-o", "--output", required=True, help="a folder: <method>.wav and index.html")
    compare.add_argument(
        "--methods",
        default=",".join(COMPARE_DEFAULT),
        help="comma-separated (default %(default)s; also gram: slow on a CPU, about 3.5x the content's duration; "
        "decoder: for a style file named after a bundled decoder's instrument, e.g. violin.wav)",
    )
    compare.set_defaults(run=command_compare)

    methods = commands.add_parser("methods", help="list the methods and their settings")
    methods.set_defaults(run=lambda _: print(methods_help()) or 0)

    train = commands.add_parser(
        "train-decoder",
        help="a decoder for one instrument, from a folder of recordings",
        epilog="Hydra overrides follow --: jukestyle train-decoder flute/ -o flute.pth.tar -- trainer.max_steps=300",
    )
    train.add_argument("audio_dir", help="one instrument's recordings (a minute or more; any formats)")
    train.add_argument("-o", "--output", required=True, help="the decoder file, <name>.pth.tar")
    train.set_defaults(run=command_train_decoder, overrides=[])  # main() puts what follows -- here

    # run and explore hand their arguments on as they are (main() fills them in)
    run = commands.add_parser("run", help="the framework's runs: python scripts/run.py <Hydra overrides>")
    run.set_defaults(run=command_run, overrides=[])
    explore = commands.add_parser("explore", help="the app (Streamlit; its options follow, e.g. --server.port 8502)")
    explore.set_defaults(run=command_explore, streamlit=[])
    return top


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    handed_on = []  # arguments for Hydra or Streamlit, as they are
    if argv and argv[0] in ("run", "explore") and argv[1:] not in (["-h"], ["--help"]):
        argv, handed_on = argv[:1], argv[1:]
    elif argv and argv[0] == "train-decoder" and "--" in argv:
        argv, handed_on = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    args = parser().parse_args(argv)
    if handed_on:
        setattr(args, "streamlit" if args.command == "explore" else "overrides", handed_on)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioWarning)
        try:
            code = args.run(args)
        except JukestyleError as error:
            code = 1
            message = f"error: {error}"
        else:
            message = None
    for warning in caught:  # what the input had that was probably not meant, one line each
        if issubclass(warning.category, AudioWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
    if message:
        print(message, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
