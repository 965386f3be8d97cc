"""The one entry point: every experiment, sweep and training run.

    python scripts/run.py experiment=adain_multilayer
    python scripts/run.py experiment=pretrain_vqvae hydra.run.dir=outputs/pretrain
    python scripts/run.py -m experiment=adain_multilayer method.alpha=0.25,0.5,1.0

This is the only module that reads the Hydra configuration; everything else is
built from `_target_`s. Problems with the user's input end the run with one
line naming the file or setting, without a traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from jukestyle.errors import ConfigError, JukestyleError, RunInterrupted
from jukestyle.evaluation.records import read_records
from jukestyle.fileio import writable_folder, write_json

# The clone, or the installed jukestyle_lightning: both hold configs/, data/ and scripts/ side by side.
REPO = Path(__file__).resolve().parents[1]
# configs/paths reads these. Set, not defaulted: a value inherited from another process (a test, a clone's run
# starting an installed one) must not send this run to another copy's data or outputs; paths.<key>=... overrides.
os.environ["JUKESTYLE_ROOT"] = str(REPO)
# Runs go to outputs/ of the clone, or, from an install (`jukestyle run`), to outputs/ of the current folder:
# never into site-packages.
IS_CLONE = (REPO / "setup.cfg").is_file()
os.environ["JUKESTYLE_OUTPUTS"] = str((REPO if IS_CLONE else Path.cwd()) / "outputs")


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _uses_wandb(cfg: DictConfig) -> bool:
    return any("Wandb" in str(entry.get("_target_", "")) for entry in (cfg.get("logger") or {}).values() if entry)


@contextlib.contextmanager
def _wandb_environment(output_dir: Path) -> Iterator[None]:
    """W&B's files (the run, staged artifacts) go to this run's folder, also for each job of a sweep;
    offline when no login is found. The previous environment is restored afterwards."""
    settings = {"WANDB_DIR": str(output_dir), "WANDB_DATA_DIR": str(output_dir / "wandb" / "data")}
    if not _wandb_logged_in() and "WANDB_MODE" not in os.environ:
        settings["WANDB_MODE"] = "offline"
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build(config: DictConfig, **kwargs):
    """Instantiate a `_target_` config with plain Python containers (never OmegaConf objects),
    so that what objects store, e.g. in checkpoints, loads with torch.load(weights_only=True).
    A setting the target does not take (a typo such as ``+method.alhpa=0.5``) is one line, as the API gives."""
    try:
        return hydra.utils.instantiate(config, _convert_="all", **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if not isinstance(cause, TypeError) or "unexpected keyword argument" not in str(cause):
            raise
        target = re.search(r"target '([^']+)'", str(error))
        key = re.search(r"full_key: (\S+)", str(error))
        where = " ".join(f"{label} {match.group(1)}" for label, match in (("at", key), ("of", target)) if match)
        raise ConfigError(f"bad option {where}: {cause}") from None


def _instantiate_all(section: DictConfig | None) -> list:
    """Objects of a dict of configs (callbacks, loggers); entries set to null are skipped."""
    return [build(entry) for entry in (section or {}).values() if entry]


def _finish_wandb() -> None:
    import wandb

    run = wandb.run
    if run is None:
        return
    offline = run.settings.mode == "offline" or os.environ.get("WANDB_MODE") == "offline"
    run_dir = Path(run.dir).parent
    wandb.finish()
    if offline:
        print(f"W&B run saved offline; upload it with: wandb sync {run_dir}")


def _hydra_job() -> DictConfig | None:
    return HydraConfig.get() if HydraConfig.initialized() else None


def _is_multirun() -> bool:
    job = _hydra_job()
    return job is not None and job.mode == RunMode.MULTIRUN


def _overrides() -> list[str]:
    job = _hydra_job()
    return list(job.overrides.task) if job is not None else []


def _name_sweep_jobs(cfg: DictConfig) -> None:
    """In a sweep, every job's W&B run joins one group named after the sweep folder, and is
    named after its job number and overrides, so that a dashboard groups and labels them."""
    job = _hydra_job()
    wandb = (cfg.get("logger") or {}).get("wandb")
    if not _is_multirun() or not wandb:
        return
    with open_dict(cfg):
        wandb.group = f"{cfg.name}-{Path(job.sweep.dir).name}"
        wandb.name = f"{cfg.name}-{job.job.num}" + (f" {job.job.override_dirname}" if job.job.override_dirname else "")


def _check_method_overrides(cfg: DictConfig, overrides: list[str]) -> None:
    """An experiment that runs several methods (``task.module.methods.main: null``, e.g. paper_all) does not use
    ``method``: an override of it would be composed and silently dropped, so it is refused with the right key."""
    methods = OmegaConf.select(cfg, "task.module.methods")
    if methods is None or methods.get("main") is not None:
        return
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key == "method" or key.startswith("method."):
            setting = key.removeprefix("method").lstrip(".") or "<setting>"
            names = ", ".join(name for name, method in methods.items() if method is not None)
            raise ConfigError(
                f"{override}: this experiment runs several methods ({names}) and ignores `method`; "
                f"set task.module.methods.<name>.{setting} instead"
            )


def run(cfg: DictConfig) -> None:
    output_dir = Path(cfg.paths.output_dir)
    _check_method_overrides(cfg, _overrides())
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("runtime"):
        build(cfg.runtime)
    _name_sweep_jobs(cfg)
    uses_wandb = _uses_wandb(cfg)
    with contextlib.ExitStack() as stack:
        if uses_wandb:
            stack.enter_context(_wandb_environment(output_dir))
            stack.callback(_finish_wandb)  # always closes the W&B run, also when the run fails
        _run(cfg, output_dir)


def _plain(cfg: DictConfig) -> dict:
    """The run's configuration as plain, resolved containers (without Hydra's own settings)."""
    return {
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in cfg.items()
        if key != "hydra"
    }


def _run(cfg: DictConfig, output_dir: Path) -> None:
    datamodule = build(cfg.data)
    module = build(cfg.task.module)
    # Methods that optimise with gradients (gram) cannot run under inference mode.
    needs_grad = {"inference_mode": False} if getattr(module, "needs_grad", False) else {}
    trainer = build(
        cfg.trainer,
        callbacks=_instantiate_all(cfg.get("callbacks")),
        logger=_instantiate_all(cfg.get("logger")) or False,
        **needs_grad,
    )
    for logger in trainer.loggers:  # the whole configuration, so that dashboards can compare runs by any setting
        logger.log_hyperparams({"config": _plain(cfg), "overrides": _overrides()})
    if cfg.task.mode not in ("fit", "predict"):
        raise JukestyleError(f"task.mode must be 'fit' or 'predict', got {cfg.task.mode!r}")
    try:
        if cfg.task.mode == "fit":
            last = _last_checkpoint(output_dir)
            ckpt_path = str(last) if cfg.task.get("resume", False) and last.is_file() else None
            if ckpt_path:
                print(f"resuming from {ckpt_path}")
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        else:
            trainer.predict(module, datamodule=datamodule, return_predictions=False)
    except SystemExit:
        # Lightning's way out of a SIGTERM (SIGTERMException, exit status 0) or a Ctrl-C (exit 1), once it has
        # saved what it had: a run that stopped early must not look finished
        raise _interrupted(trainer, cfg, output_dir) from None


def _last_checkpoint(output_dir: Path) -> Path:
    return output_dir / "checkpoints" / "last.ckpt"


def _interrupted(trainer: pl.Trainer, cfg: DictConfig, output_dir: Path) -> RunInterrupted:
    cause = "SIGTERM" if trainer.received_sigterm else "an interrupt (Ctrl-C)"
    if cfg.task.mode == "predict":  # finished pairs are records on disk, reused by the same command
        return RunInterrupted(f"stopped by {cause}; the finished pairs are kept: run the same command to go on")
    last = _last_checkpoint(output_dir)
    kept = f"the last checkpoint is {last}" if last.is_file() else "no checkpoint was saved"
    again = "run the same command to resume" if cfg.task.get("resume") and last.is_file() else "nothing to resume"
    return RunInterrupted(f"stopped by {cause} at step {trainer.global_step}; {kept}; {again}")


def _transfer_counts(output_dir: Path) -> dict[str, int] | None:
    """How many of the run's transfers (reference rows aside) succeeded and failed; None for runs without any."""
    try:
        records = [record for record in read_records(output_dir / "transfers") if not record.get("reference")]
    except (OSError, ValueError):  # a folder that cannot be read tells nothing
        return None
    if not records:
        return None
    failed = sum(1 for record in records if record.get("error"))
    return {"succeeded": len(records) - failed, "failed": failed}


def _require_a_transfer(counts: dict[str, int] | None, output_dir: Path) -> None:
    """A run in which no transfer succeeded fails (exit code 1), so that a script can tell."""
    if counts is not None and counts["succeeded"] == 0:
        raise JukestyleError(
            f"no transfer succeeded: all {counts['failed']} failed (their errors: {output_dir / 'results.csv'})"
        )


def _write_run_status(
    output_dir: Path, started: float, error: str | None, transfers: dict[str, int] | None, status: str | None = None
) -> None:
    """run.json: how the run ended (completed, failed or interrupted); a sweep's summary reads it from every job."""
    job = _hydra_job()
    write_json(
        output_dir / "run.json",
        {
            "status": status or ("failed" if error else "completed"),
            "error": error,
            "transfers": transfers,
            "overrides": _overrides(),
            "job": job.job.num if job is not None and _is_multirun() else None,
            "seconds": round(time.time() - started, 3),
        },
    )


@hydra.main(version_base="1.3", config_path="../configs", config_name="run")
def main(cfg: DictConfig) -> None:
    started = time.time()
    output_dir = Path(cfg.paths.output_dir)
    counts = None
    try:
        run(cfg)
        counts = _transfer_counts(output_dir)  # the records are read once, for the check and for run.json
        _require_a_transfer(counts, output_dir)
    except Exception as error:
        user_error = _user_error(error)
        message = str(user_error) if user_error is not None else f"{type(error).__name__}: {error}".splitlines()[0]
        interrupted = isinstance(user_error, RunInterrupted)
        status = "interrupted" if interrupted else None
        _write_run_status(output_dir, started, message, counts or _transfer_counts(output_dir), status)
        if interrupted:  # also in a sweep: the user (or the job system) stops it all, not just this job
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)
        if user_error is None:
            if not _is_multirun():
                raise
            traceback.print_exc()
        print(f"error: {message}", file=sys.stderr)
        if not _is_multirun():
            sys.exit(1)
        # In a sweep the job ends here and the next one runs; the sweep summary reports the failure.
        return
    _write_run_status(output_dir, started, None, counts)


def _user_error(error: BaseException) -> JukestyleError | None:
    """The JukestyleError behind ``error``, if any (Hydra wraps errors raised while instantiating)."""
    while error is not None and not isinstance(error, JukestyleError):
        error = error.__cause__ or error.__context__
    return error


# Config groups chosen on the command line as `group=option` (configs/<group>/<option>.yaml).
GROUPS = ("method", "model", "data", "experiment", "loss", "logger", "trainer", "callbacks", "task", "sweep")
CHECKPOINT_SUFFIXES = (".tar", ".pt", ".pth", ".ckpt")


def _command_line(argv: list[str]) -> list[str]:
    """The command line as Hydra should see it, or one line for what Hydra would answer with a page.

    An override Hydra cannot parse is named; an unknown config option lists the valid ones;
    ``model=<checkpoint path or URL>`` stands for ``model=bundled model.source=<path>``; a run folder that cannot
    be written is named.
    """
    _check_override_syntax(argv)
    args, extra = [], []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in GROUPS and value != "null" and not any(c in value for c in "(),*"):
            options = sorted(path.stem for path in (REPO / "configs" / key).glob("*.yaml"))
            if value not in options:
                if key == "model" and ("/" in value or value.endswith(CHECKPOINT_SUFFIXES)):
                    args.append("model=bundled")
                    extra.append(f"model.source={value}")
                    continue
                _fail(f"unknown {key} {value!r}; choose one of: {', '.join(options)}")
        args.append(arg)
    multirun = "-m" in argv or "--multirun" in argv
    folder_key = "hydra.sweep.dir=" if multirun else "hydra.run.dir="
    log_dirs = [arg.removeprefix("paths.log_dir=") for arg in argv if arg.startswith("paths.log_dir=")]
    folders = [arg.removeprefix(folder_key) for arg in argv if arg.startswith(folder_key)]
    folder = folders[-1] if folders else (log_dirs[-1] if log_dirs else os.environ["JUKESTYLE_OUTPUTS"])
    if not writable_folder(folder):
        _fail(f"{folder}: the run folder cannot be written (set hydra.run.dir=<a folder you can write>)")
    return args + extra


# Hydra's own flags that take the next argument as their value (not an override)
FLAGS_WITH_VALUES = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                     "-cd", "--info", "-i", "--experimental-rerun", "--shell-completion", "-sc"}  # fmt: skip


def _check_override_syntax(argv: list[str]) -> None:
    """One line for an override Hydra cannot parse (e.g. ``trainer.max_steps 100``), where Hydra prints four."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for previous, arg in zip(["", *argv], argv, strict=False):
        if arg.startswith("-") or (previous in FLAGS_WITH_VALUES and "=" not in arg):
            continue
        try:
            parser.parse_overrides([arg])
        except OverrideParseException as error:
            lines = [line for line in str(error).splitlines() if not line.startswith(("Error parsing", "See http"))]
            reason = f" ({lines[0].strip()})" if lines else ""
            _fail(f"{arg}: not an override Hydra can parse{reason}; write key=value, +key=value or ~key")


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    sys.argv[1:] = _command_line(sys.argv[1:])
    main()
