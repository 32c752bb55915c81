"""Typed configuration: dataclass sections read from TOML, dotted overrides, validation.

A config is a :class:`Config` of sections; each section is a dataclass whose fields carry their
valid range in ``metadata`` (``min``, ``max``, ``choices``, ``help``). ``load_config`` merges,
in order, the defaults, a TOML file and ``section.key=value`` overrides, then validates; every
problem raises :class:`~genenkf_hpc.errors.UserError` naming the key. ``to_toml`` writes the
resolved config that each run stores beside its outputs as ``config.toml``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .errors import UserError


def _f(default, help="", **limits):
    """A field with its help text and valid range (min / max / choices / min_exclusive)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default),
                     metadata=dict(help=help, **limits))
    return field(default=default, metadata=dict(help=help, **limits))


@dataclass
class ModelConfig:
    """The simulation (forecast) model used by the forecasts and the dataset."""

    dynamics: str = _f("lorenz96", "dynamical model: a registered name (lorenz96, "
                       "lorenz96_two_scale) or 'package.module:factory' (docs/dynamics.md)")
    nx: int = _f(40, "number of grid points N", min=4)
    forcing: float = _f(8.0, "forcing F of the simulation model (biased when != F_nature)")
    dt: float = _f(0.05, "time step", min_exclusive=0.0, max=1.0)
    spinup_steps: int = _f(1000, "steps discarded before a run starts", min=0)
    params: dict[str, float] = _f({}, "further parameters of the dynamics (e.g. lorenz96: "
                                  "b0..b3 of a cubic parameterisation)")


@dataclass
class NatureConfig:
    """The truth's model, when it differs from the forecast model (structural model error).

    Empty ``dynamics``: the nature runs use the [model] dynamics and params with F_nature. The
    nature model observes the same ``model.nx`` grid; its time step must divide the cycle
    interval ``model.dt * osse.steps_per_cycle``, and its spin-up lasts as long in model time
    as the model's (``model.spinup_steps * model.dt``)."""

    dynamics: str = _f("", "dynamical model of the nature runs ('': model.dynamics)")
    dt: float = _f(0.0, "time step of the nature model (0: model.dt)", min=0.0)
    params: dict[str, float] = _f({}, "parameters of the nature model (used when "
                                  "nature.dynamics is set)")


@dataclass
class OsseConfig:
    """The observing-system simulation experiment: nature runs and observations."""

    forcings: list[float] = _f([8.0], "F_nature of each nature run (truth)")
    cycles: int = _f(1000, "DA cycles after spin-up", min=1)
    burn_in: int = _f(100, "cycles left out of time means", min=0)
    steps_per_cycle: int = _f(1, "model steps between analyses (da_steps)", min=1)
    obs_interval: int = _f(1, "observe every obs_interval-th grid point", min=1)
    obs_sigma: float = _f(1.0, "observation error standard deviation", min_exclusive=0.0)
    seed: int = _f(0, "seed of the nature runs, observations and ensembles", min=0)


@dataclass
class FilterConfig:
    """Ensemble analysis settings (LETKF, ETKF, EnKF) and the initial ensemble."""

    members: int = _f(32, "ensemble size k", min=2)
    radius: float = _f(4.0, "localisation cut-off in grid points (obs farther get no weight)",
                       min_exclusive=0.0)
    taper: str = _f("gaspari_cohn", "localisation taper", choices=("box", "gaspari_cohn"))
    inflation: float = _f(1.0, "multiplicative prior inflation (>= 1)", min=1.0)
    rtps: float = _f(0.0, "relaxation to prior spread (0..1)", min=0.0, max=1.0)
    rtpp: float = _f(0.0, "relaxation to prior perturbations (0..1)", min=0.0, max=1.0)
    solve: str = _f("auto", "LETKF local solve", choices=("auto", "ensemble", "observation"))
    center_perturbations: bool = _f(True, "EnKF: remove the mean of the obs perturbations")
    additive: float = _f(0.0, "additive inflation: standard deviation per grid point of the "
                         "random perturbations added to every background member (0: off)",
                         min=0.0)
    additive_covariance: str = _f("identity", "additive inflation: covariance shape of the "
                                  "perturbations (identity, or the climatological covariance "
                                  "of the dataset's runs scaled to unit mean variance)",
                                  choices=("identity", "climatological"))


@dataclass
class ParamestConfig:
    """letkf_paramest: every member carries its own forcing F, analysed with the state."""

    spread: float = _f(1.0, "standard deviation of the members' initial F around model.forcing",
                       min_exclusive=0.0)
    min_spread: float = _f(0.1, "conditional covariance inflation: the F ensemble's standard "
                           "deviation is inflated back to this whenever it falls below",
                           min=0.0)


@dataclass
class NudgingConfig:
    """Nudging towards the observations: x <- (1 - alpha) x + alpha y at observed points."""

    alpha: float = _f(0.5, "nudging weight", min=0.0, max=1.0)


@dataclass
class GenerativeConfig:
    """The Generative EnKF cycle: pseudo-ensemble from a diffusion model, LETKF, nudging."""

    checkpoint: str = _f("", "trained diffusion checkpoint (genenkf train output); in a "
                         "config file relative to the file", path=True)
    members: int = _f(32, "pseudo-ensemble size", min=2)
    sampler: str = _f("ddim", "sampler", choices=("ddim", "ddpm"))
    # The defaults are the best variant found on the tuning seed (docs/results.md): what
    # `--method genenkf` runs unless a config says otherwise (CONTRACT section 8).
    sampling_steps: int = _f(10, "DDIM steps of the full schedule (== diffusion.timesteps "
                             "gives DDPM); an encoding runs the last strength of them", min=1)
    eta: float = _f(0.3, "DDIM stochasticity", min=0.0, max=1.0)
    guidance: float = _f(1.0, "classifier-free guidance scale s", min=0.0)
    mode: str = _f("prior", "what the members are conditioned on: 'prior' (observations "
                   "before the analysis time; the LETKF assimilates the current one once) or "
                   "'posterior' (the current observation too, as in the paper); must match the "
                   "model's network.obs_lag", choices=("prior", "posterior"))
    encoding: str = _f("sdedit", "how the members start from the simulation: 'sdedit' (noised to "
                       "strength T with fresh noise per member), 'ddib' (deterministic "
                       "inversion), 'noise' (pure noise, the simulation unused)",
                       choices=("noise", "ddib", "sdedit"))
    strength: float = _f(0.15, "start time of the encoding as a fraction of the schedule "
                         "(spread knob)", min_exclusive=0.0, max=1.0)
    alpha: float = _f(1.0, "nudging of the simulation towards the analysis", min=0.0, max=1.0)
    inflation: float = _f(3.0, "multiplicative inflation of the pseudo-ensemble's covariance "
                          "before the analysis (its anomalies times the square root): the "
                          "network's members are under-dispersed (docs/results.md); with "
                          "adaptive_inflation the first cycle's value", min=1.0)
    adaptive_inflation: float = _f(0.05, "learn the pseudo-ensemble inflation from the "
                                   "innovations: the weight of each cycle's estimate in the "
                                   "running value (0: fixed generative.inflation)",
                                   min=0.0, max=1.0)
    use_ensemble_mean: bool = _f(True, "nudge towards the analysis mean (else blend members)")
    recentre: bool = _f(False, "centre the pseudo-ensemble on the simulation forecast")
    inversion_refine: int = _f(2, "DDIB: fixed-point iterations per inversion step", min=0)
    clip: float = _f(1.0, "bound of the x0 predictions in normalised units (1: the training "
                     "range; 0: no clipping)", min=0.0)
    precision: str = _f("float32", "network precision when sampling",
                        choices=("float32", "float64"))
    device: str = _f("cpu", "torch device for sampling (cpu, cuda, auto: GPU <local rank> "
                     "when there is one)")
    fixed_batch: int = _f(0, "network calls on batches of exactly this many states, padded "
                          "(0: a rank's whole member block at once); > 0 makes float32 "
                          "pseudo-ensembles independent of the rank count", min=0)
    allow_mismatch: list[str] = _f([], "keys on which the model may differ from the experiment "
                                   "on purpose (e.g. [\"obs_sigma\"]; docs/diffusion.md)")
    batch_members: int = _f(0, "members per network batch when sampling (0: all of a rank's "
                            "members at once); bounds the memory at large model.nx", min=0)
    gaussian_scale: float = _f(0.5, "gaussian_pseudo: spread scale of the climatological "
                               "covariance", min=0.0)


@dataclass
class DatasetConfig:
    """Training data for the diffusion model: many Lorenz-96 trajectories."""

    trajectories: int = _f(100, "independent trajectories", min=3)
    steps: int = _f(1000, "stored steps per trajectory", min=1)
    spinup_steps: int = _f(500, "steps discarded from each random initial state", min=0)
    shard_trajectories: int = _f(10, "trajectories per HDF5 shard", min=1)
    val_fraction: float = _f(0.1, "fraction of trajectories for validation", min=0.0, max=0.5)
    test_fraction: float = _f(0.1, "fraction of trajectories for testing", min=0.0, max=0.5)
    seed: int = _f(1, "seed of the initial states and the split", min=0)
    source: str = _f("model", "training runs of the forecast model (model.forcing) or of the "
                     "nature model (a reanalysis-like archive; the single osse.forcings entry)",
                     choices=("model", "nature"))


@dataclass
class NetworkConfig:
    """The denoiser: the 1D U-Net (default) or a local network for any grid size."""

    kind: str = _f("unet", "network: unet (the original's, for one nx) or local (translation-"
                   "equivariant, finite receptive field: any nx, domain-decomposed sampling)",
                   choices=("unet", "local"))
    base_width: int = _f(40, "channels of the first level", min=1)
    multipliers: list[int] = _f([1, 2, 4, 8], "channel multiplier per level")
    groups: int = _f(8, "GroupNorm groups (unet)", min=1)
    attention: bool = _f(True, "linear attention per level, full attention at the bottleneck "
                              "(unet)")
    seq_len: int = _f(1, "observation history length (>= 2 adds a history embedding)", min=1)
    obs_lag: int = _f(1, "cycles between the newest observation the network sees and the "
                      "state it generates: 0 = posterior (conditioned on the current "
                      "observation), 1 = prior (only earlier ones)", min=0, max=1)
    blocks_per_level: int = _f(2, "ResNet blocks per level", min=1)


@dataclass
class DiffusionConfig:
    """The diffusion process and its training objective."""

    timesteps: int = _f(1000, "diffusion steps T", min=2)
    schedule: str = _f("cosine", "beta schedule", choices=("cosine", "linear"))
    objective: str = _f("eps", "what the network predicts", choices=("eps", "v"))
    loss: str = _f("l1", "training loss", choices=("l1", "l2"))
    p_uncond: float = _f(0.1, "probability of the null condition in training", min=0.0, max=1.0)


@dataclass
class TrainConfig:
    """Training loop (one process or DistributedDataParallel)."""

    steps: int = _f(100000, "optimizer steps", min=1)
    batch_size: int = _f(16, "global batch, split over the ranks", min=1)
    grad_accum: int = _f(1, "micro-batches per optimizer step", min=1)
    lr: float = _f(1e-3, "peak learning rate (Adam)", min_exclusive=0.0)
    lr_schedule: str = _f("cosine", "learning-rate schedule", choices=("cosine", "constant"))
    warmup_steps: int = _f(0, "linear warm-up steps", min=0)
    ema_decay: float = _f(0.999, "EMA decay of the weights used for sampling", min=0.0, max=1.0)
    val_every: int = _f(1000, "validate every n steps (0: only at the end)", min=0)
    val_samples: int = _f(8, "held-out states used by the sampling validation", min=1)
    checkpoint_every: int = _f(5000, "write checkpoints/step_*.pt every n steps", min=1)
    log_every: int = _f(50, "append to loss.csv every n steps", min=1)
    seed: int = _f(0, "seed of initialisation, batches and noise", min=0)
    device: str = _f("auto", "cpu, cuda or auto")
    precision: str = _f("auto", "bf16 autocast on GPU (auto) or fp32",
                        choices=("auto", "bf16", "fp32"))


@dataclass
class RunConfig:
    """Run-time behaviour shared by the commands."""

    checkpoint_every: int = _f(0, "assimilate: restart file every n cycles (0: off)", min=0)
    progress: bool = _f(True, "progress bar on a terminal")
    domains: int | str = _f("auto", "assimilate: domains of the ring (ranks = member groups x "
                            "domains); \"auto\": every rank its own segment when each gets at "
                            "least 1000 points, else 1 (members over ranks)")


@dataclass
class CampaignConfig:
    """The comparison campaign (genenkf campaign; docs/baselines.md)."""

    methods: list[str] = _f(["noda", "nudging", "enkf", "letkf", "letkf_tuned", "genenkf"],
                            "entries to compare: methods, built-in tuned entries (letkf_tuned, "
                            "letkf_tuned_k4, letkf_tuned_k8, letkf_paramest, gaussian_pseudo) "
                            "or variant labels")
    variants: list[str] = _f([], "'label:base' entries: the method or built-in entry base under "
                             "its own label, with its own campaign.method_overrides")
    method_overrides: list[str] = _f([], "per-entry settings, 'label:section.key=value'")
    seeds: list[int] = _f([], "seeds of the scored OSSEs ([]: osse.seed alone); results.md "
                          "shows mean +- standard deviation over them")
    tune_seed: int = _f(1000, "seed of the separate OSSE every tuned entry is tuned on", min=0)
    tune_cycles: int = _f(300, "cycles of each tuning run", min=1)
    tune_search: str = _f("coordinate", "grid search over the whole product of the grids, or "
                          "coordinate-wise (one key at a time, best value kept, repeated)",
                          choices=("coordinate", "grid"))
    tune_sweeps: int = _f(2, "coordinate search: most passes over the keys", min=1)
    tune_radius: list[float] = _f([2.0, 4.0, 6.0, 10.0, 20.0], "LETKF radii tried (grid points)")
    tune_inflation: list[float] = _f([1.0, 1.05, 1.1, 1.2, 1.3], "multiplicative inflations tried")
    tune_rtps: list[float] = _f([0.0, 0.5, 0.9], "RTPS values tried")
    tune_additive: list[float] = _f([0.0, 0.1, 0.3], "additive inflation amplitudes tried")
    tune_gaussian_scale: list[float] = _f([0.1, 0.2, 0.35, 0.5, 0.75],
                                          "gaussian_pseudo spread scales tried")


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "nature": NatureConfig,
    "osse": OsseConfig,
    "filter": FilterConfig,
    "nudging": NudgingConfig,
    "paramest": ParamestConfig,
    "generative": GenerativeConfig,
    "dataset": DatasetConfig,
    "network": NetworkConfig,
    "diffusion": DiffusionConfig,
    "train": TrainConfig,
    "run": RunConfig,
    "campaign": CampaignConfig,
}


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    nature: NatureConfig = field(default_factory=NatureConfig)
    osse: OsseConfig = field(default_factory=OsseConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    nudging: NudgingConfig = field(default_factory=NudgingConfig)
    paramest: ParamestConfig = field(default_factory=ParamestConfig)
    generative: GenerativeConfig = field(default_factory=GenerativeConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    campaign: CampaignConfig = field(default_factory=CampaignConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Loading and overrides


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Defaults <- TOML file <- ``section.key=value`` overrides, validated."""
    data: dict[str, dict[str, Any]] = {}
    if path is not None:
        data = resolve_paths(read_toml(path), Path(path).parent)
    for item in overrides:
        section, key, value = parse_override(item)
        data.setdefault(section, {})[key] = value
    return config_from_dict(data)


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not a UTF-8 TOML file") from None


def resolve_paths(data: dict, base: Path) -> dict:
    """File paths in a config file (keys marked ``path=True``) are relative to the file's
    folder, so a shipped config names its shipped model wherever it is run from; overrides on
    the command line stay relative to the working directory. Returns ``data`` with those keys
    absolute."""
    def absolute(value: str) -> str:
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())

    for name, values in data.items():
        if name not in SECTIONS or not isinstance(values, dict):
            continue  # reported by config_from_dict
        for f in dataclasses.fields(SECTIONS[name]):
            value = values.get(f.name)
            if f.metadata.get("path") and isinstance(value, str) and value:
                values[f.name] = absolute(value)
    # a campaign entry's own file, 'label:generative.checkpoint="../models/x.pt"', likewise
    overrides = data.get("campaign", {}).get("method_overrides") if isinstance(
        data.get("campaign"), dict) else None
    if isinstance(overrides, list):
        data["campaign"]["method_overrides"] = [_absolute_override(item, absolute)
                                                for item in overrides]
    return data


def _absolute_override(item, absolute) -> Any:
    """A 'label:section.key=value' item whose key is a path, with the path made absolute."""
    if not isinstance(item, str) or ":" not in item:
        return item
    label, _, override = item.partition(":")
    try:
        section, key, value = parse_override(override)
    except UserError:
        return item  # reported where the overrides are read
    if section not in SECTIONS:
        return item
    spec = {f.name: f for f in dataclasses.fields(SECTIONS[section])}.get(key)
    if spec is not None and spec.metadata.get("path") and isinstance(value, str) and value:
        return f"{label}:{section}.{key}={json.dumps(absolute(value))}"
    return item


def parse_override(item: str) -> tuple[str, str, Any]:
    """``'osse.forcings=[5, 8]'`` -> ``('osse', 'forcings', [5, 8])``; non-TOML values stay strings."""
    name, sep, text = item.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key or "." in key:
        raise UserError(f"override {item!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return section, key, value


def config_from_dict(data: dict[str, Any]) -> Config:
    sections = {}
    for name, values in data.items():
        if name not in SECTIONS:
            raise UserError(f"unknown config section [{name}]; valid sections: "
                            + ", ".join(SECTIONS))
        if not isinstance(values, dict):
            raise UserError(f"config entry {name} must be a [section] table")
        sections[name] = _build_section(name, SECTIONS[name], values)
    cfg = Config(**sections)
    validate(cfg)
    return cfg


def _build_section(name: str, cls: type, values: dict[str, Any]):
    hints = get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise UserError(f"unknown config key {name}.{key}; valid keys of [{name}]: "
                            + ", ".join(valid))
        kwargs[key] = _coerce(f"{name}.{key}", hints[key], value)
    section = cls(**kwargs)
    for f in dataclasses.fields(cls):
        _check_range(f"{name}.{f.name}", getattr(section, f.name), f.metadata)
    return section


def _coerce(key: str, hint, value):
    """Check ``value`` against the annotation; ints are accepted where floats are expected."""
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        arms = get_args(hint)
        for arm in arms:
            try:
                return _coerce(key, arm, value)
            except UserError:
                continue
        raise UserError(f"{key}={value!r}: expected " + " or ".join(
            {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
            .get(arm, str(arm)) for arm in arms))
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{key}={value!r}: expected a table, e.g. {{name = 1.0}}")
        _, item = get_args(hint)
        return {str(k): _coerce(f"{key}.{k}", item, v) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{key}={value!r}: expected a list")
        (item,) = get_args(hint)
        return [_coerce(f"{key}[{i}]", item, v) for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{key}={value!r}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{key}={value!r}: expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{key}={value!r}: expected a number")
        if not math.isfinite(value):
            raise UserError(f"{key}={value!r}: expected a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"{key}={value!r}: expected a string")
        return value
    raise TypeError(f"unsupported annotation {hint} for {key}")  # internal


def _check_range(key: str, value, meta) -> None:
    values = value if isinstance(value, list) else list(value.values()) \
        if isinstance(value, dict) else [value]
    for v in values:
        if "choices" in meta and v not in meta["choices"]:
            raise UserError(f"{key}={v!r}: expected one of " + ", ".join(map(str, meta["choices"])))
        if "min" in meta and v < meta["min"]:
            raise UserError(f"{key}={v!r}: must be >= {meta['min']}")
        if "min_exclusive" in meta and v <= meta["min_exclusive"]:
            raise UserError(f"{key}={v!r}: must be > {meta['min_exclusive']}")
        if "max" in meta and v > meta["max"]:
            raise UserError(f"{key}={v!r}: must be <= {meta['max']}")


def validate(cfg: Config) -> None:
    """Checks that involve several keys."""
    if not cfg.osse.forcings:
        raise UserError("osse.forcings=[]: list at least one F_nature")
    if len(set(cfg.osse.forcings)) != len(cfg.osse.forcings):
        raise UserError(f"osse.forcings={cfg.osse.forcings}: values must be distinct")
    if cfg.osse.obs_interval > cfg.model.nx:
        raise UserError(f"osse.obs_interval={cfg.osse.obs_interval}: must be <= model.nx="
                        f"{cfg.model.nx} (nothing would be observed)")
    if cfg.osse.burn_in >= cfg.osse.cycles:
        raise UserError(f"osse.burn_in={cfg.osse.burn_in}: must be < osse.cycles="
                        f"{cfg.osse.cycles}")
    if cfg.dataset.val_fraction + cfg.dataset.test_fraction >= 1.0:
        raise UserError("dataset.val_fraction + dataset.test_fraction must be < 1")
    if not cfg.network.multipliers or min(cfg.network.multipliers) < 1:
        raise UserError(f"network.multipliers={cfg.network.multipliers}: "
                        "expected a non-empty list of integers >= 1")
    if cfg.nature.dynamics:
        from .dynamics.from_config import nature_clock

        nature_clock(cfg)  # the nature time step must divide the cycle interval
    from .diffusion.compatibility import check_allowed

    check_allowed(cfg.generative.allow_mismatch)
    domains = cfg.run.domains
    if isinstance(domains, str) and domains != "auto" or isinstance(domains, int) and domains < 1:
        raise UserError(f"run.domains={domains!r}: expected \"auto\" or an integer >= 1")
    if cfg.generative.sampling_steps > cfg.diffusion.timesteps:
        raise UserError(f"generative.sampling_steps={cfg.generative.sampling_steps}: must be <= "
                        f"diffusion.timesteps={cfg.diffusion.timesteps}")


# ---------------------------------------------------------------------------------------------
# Writing


def to_toml(cfg: Config) -> str:
    """The resolved config as TOML (round-trips through :func:`load_config`)."""
    lines = []
    for name, values in cfg.to_dict().items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")  # internal


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """``(key, default, help)`` of a section, for documentation."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append((f.name, default, f.metadata.get("help", "")))
    return out
