"""``rhocast fit DATASET -o MODEL.h5``: train a density model (optionally a learning curve)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rhocast.model import PARAMETERS, DensityModel

DEFAULTS = DensityModel().get_params()

SPLIT = ("fractions", "split_seed", "train_sizes")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("fit", help="train a density model on a reference dataset",
                              description="Fits rhocast.DensityModel on the training split of DATASET and "
                                          "reports errors on its validation split. Settings come from --config "
                                          "(TOML, keys as the flags with underscores) and/or flags (flags win).")
    p.add_argument("dataset", help="reference dataset (the folder rhocast reference writes, or a version-1 HDF5 file)")
    p.add_argument("-o", "--output", required=True, help="model file (HDF5)")
    p.add_argument("--config", help="TOML file with hyper-parameters and split settings")
    p.add_argument("--fractions", type=float, nargs=3, metavar=("TRAIN", "VAL", "TEST"),
                   help="split fractions (default 0.8 0.1 0.1)")
    p.add_argument("--split-seed", type=int, help="seed of the split (default 0)")
    p.add_argument("--train-sizes", type=int, nargs="+",
                   help="fit on these numbers of training structures too, for a learning curve")
    p.add_argument("--checkpoint", help="file for the CG state (run-time option, not a hyper-parameter)")
    p.add_argument("--checkpoint-every", type=int, default=20, help="CG iterations between checkpoints (default 20)")
    p.add_argument("--resume", action="store_true",
                   help="restart CG from --checkpoint if it belongs to this problem (else an error)")
    hyper = p.add_argument_group("hyper-parameters (rhocast.DensityModel; also TOML keys of --config)")
    for name, (typ, text) in PARAMETERS.items():
        default = DEFAULTS[name]
        extra = dict(nargs="+") if name == "regularization" else {}
        if name == "regularization":
            text += "; several values: each is fitted and the one with the lowest validation error is kept"
        hyper.add_argument("--" + name.replace("_", "-"), type=typ, default=None, **extra,
                           help=f"{text} (default {default})".replace("%", "%%"))  # argparse formats help with %
    p.set_defaults(func=run)
    return p


def _settings(args) -> dict:
    cfg = {}
    if args.config:
        import tomllib

        with open(args.config, "rb") as f:
            cfg = tomllib.load(f)
    for key in list(PARAMETERS) + list(SPLIT):
        value = getattr(args, key)
        if value is not None:
            cfg[key] = value
    unknown = set(cfg) - set(PARAMETERS) - set(SPLIT)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)} in {args.config}: valid keys are "
                         f"{', '.join(list(PARAMETERS) + list(SPLIT))}")
    return cfg


def run(args: argparse.Namespace) -> int:
    from rhocast.dataset import Dataset
    from rhocast.parallel import world

    comm = world()  # under mpirun each rank fits its shard; rank 0 prints and writes
    say = print if comm.rank == 0 else (lambda *a, **k: None)

    cfg = _settings(args)
    params, etas = _checked_parameters(args, cfg)
    ds = Dataset(args.dataset)
    train, val = _split(ds, cfg, etas, say)
    model, e, scan = _fit_regularizations(ds, params, etas, train, val, args, comm, say)
    curve = _learning_curve(ds, params, model.regularization, train, val, cfg, comm, say)
    curve.append((len(train), e.relative_l2, e.baseline_relative))
    if comm.rank != 0:
        return 0
    _write_and_report(args, cfg, ds, model, e, train, val, curve, scan)
    return 0


def _checked_parameters(args, cfg: dict) -> tuple[dict, list[float]]:
    """Hyper-parameters without the regularisation, and the regularisation values to fit; every flag is
    checked here, before any data is read."""
    import numpy as np

    from rhocast.model import check_params

    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint")
    params = {k: cfg[k] for k in PARAMETERS if k in cfg}
    etas = [float(v) for v in np.atleast_1d(params.pop("regularization", DensityModel().regularization))]
    for eta in etas:
        check_params({**params, "regularization": eta})
    if len(etas) > 1 and args.checkpoint:
        raise ValueError("--checkpoint needs a single --regularization value")
    return params, etas


def _split(ds, cfg: dict, etas: list[float], say):
    """Training and validation indices; without a validation split (allowed for a single fit only) the
    training structures stand in for it, with a warning."""
    fractions = cfg.get("fractions", (0.8, 0.1, 0.1))
    train, val, _ = ds.split(cfg.get("split_seed", 0), fractions)
    if len(train) == 0:
        raise ValueError(f"the training split is empty ({len(ds.indices())} converged structures, "
                         f"--fractions {' '.join(map(str, fractions))}): give the training fraction more")
    if len(val) == 0:
        if len(etas) > 1 or cfg.get("train_sizes"):
            raise ValueError(f"the validation split is empty ({len(ds.indices())} converged structures, "
                             f"--fractions {' '.join(map(str, fractions))}): a --regularization scan and "
                             "--train-sizes need validation structures")
        say("warning: no validation split: the errors below are on the training structures and say "
            "nothing about new ones", file=sys.stderr)
        val = train
    for n in cfg.get("train_sizes", []):
        if n > len(train):
            raise ValueError(f"train size {n} exceeds the {len(train)} training structures")
    return train, val


def _fit_regularizations(ds, params: dict, etas: list[float], train, val, args, comm, say):
    """Fit one model per regularisation value; keep the one with the lowest validation error. Returns the
    kept model, its errors on ``val`` and the scan rows (eta, relative L2 %, baseline-relative %)."""
    from rhocast.accuracy import density_errors

    model, e, scan = None, None, []
    for eta in etas:
        m = DensityModel(**params, regularization=eta).fit(ds, train, checkpoint=args.checkpoint,
                                                            checkpoint_every=args.checkpoint_every,
                                                            resume=args.resume, comm=comm)
        err = density_errors(m, ds, val)
        scan.append((eta, err.relative_l2, err.baseline_relative))
        if len(etas) > 1:
            say(f"  regularization {eta:g}: validation relative L2 {err.relative_l2:.4f} %")
        if e is None or err.relative_l2 < e.relative_l2:
            model, e = m, err
    if len(etas) > 1:
        say(f"  kept regularization {model.regularization:g}")
    return model, e, scan


def _learning_curve(ds, params: dict, regularization: float, train, val, cfg: dict, comm, say) -> list:
    """Rows (n, relative L2 %, baseline-relative %) on ``val`` of models fitted on the first n of a
    seeded permutation of ``train``, for each --train-sizes value other than the full training set."""
    import numpy as np

    from rhocast.accuracy import density_errors

    curve = []
    order = np.random.default_rng(cfg.get("split_seed", 0)).permutation(train)
    for n in sorted(set(cfg.get("train_sizes", [])) - {len(train)}):
        m = DensityModel(**{**params, "regularization": regularization})
        m.fit(ds, np.sort(order[:n]), comm=comm)
        err = density_errors(m, ds, val)
        curve.append((n, err.relative_l2, err.baseline_relative))
        say(f"  {n:5d} training structures: relative L2 {err.relative_l2:.4f} %, "
            f"baseline-relative {err.baseline_relative:.3f} %")
    return curve


def _write_and_report(args, cfg: dict, ds, model, e, train, val, curve: list, scan: list) -> None:
    """Save the model, its JSON report and plots next to ``args.output``; print the fit and error tables."""
    import numpy as np

    from rhocast import plots

    out = Path(args.output)
    split_name = "validation" if val is not train else "training (no validation split)"
    model.save(out)
    floor = float(np.mean([ds.floor(int(i))["relative_l2"] for i in val]))
    report = {"dataset": str(args.dataset), "model": str(out), "settings": cfg, "n_train": len(train),
              "n_validation": len(val) if val is not train else 0, "errors_on": split_name, "validation_relative_l2": e.relative_l2,
              "validation_baseline_relative": e.baseline_relative, "fitting_floor_relative_l2": floor,
              "learning_curve": curve, "regularization_scan": scan, "fit": model.fit_report_}
    out.with_suffix(".report.json").write_text(json.dumps(report, indent=2, default=float))
    plots.learning_curve(out.with_suffix(".learning_curve.png"), [c[0] for c in curve], [c[1] for c in curve],
                         split_name, floor, title=f"learning curve: {Path(args.dataset).name}")
    if model.loss_history_:
        plots.loss_history(out.with_suffix(".loss_history.png"), model.loss_history_)
    print(f"model -> {out}  ({model.fit_report_['n_weights']} weights, solver {model.solver_used_}, "
          f"{sum(model.fit_report_['times_s'].values()):.1f} s, peak memory {model.fit_report_['peak_memory_mb']:.0f} MB)")
    for r, part in enumerate(model.fit_report_["ranks"]):
        print(f"  rank {r}: {part['n_structures']} structures, Psi + metrics {part['psi_and_metrics_mb']:.1f} MB, "
              f"preconditioner {part['preconditioner_mb']:.1f} MB, feature sample "
              f"{part['feature_sample_mb']:.1f} MB, peak {part['peak_memory_mb']:.0f} MB")
    print(f"{split_name} ({len(val)} structures):\n{e.table()}\n  fitting floor        : {floor:.4f} %")
