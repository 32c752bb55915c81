"""What a campaign runs: its entries (a label, a registered method, fixed overrides and an
optional tuning grid) and the configs of their runs.

An entry's label is what the tables show. It is one of:

- a registered method (``noda``, ``letkf``, ``genenkf``, ...): that method with the config's
  settings (``letkf`` keeps the original's [filter] settings; ``genenkf`` is always the shipped
  best variant, CONTRACT section 8);
- a built-in tuned entry (:data:`BUILT_IN`): ``letkf_tuned`` (Gaspari-Cohn LETKF with radius,
  inflation, RTPS and additive inflation chosen by tuning), the cost-matched
  ``letkf_tuned_k4`` / ``letkf_tuned_k8`` (the same with 4 and 8 members, each tuned on its
  own), ``letkf_paramest`` (tuned like ``letkf_tuned``) and ``gaussian_pseudo`` (spread scale
  tuned);
- a variant, ``campaign.variants = ["label:base"]``: a copy of the entry ``base`` (a method or a
  built-in entry, with its overrides and grid) under its own label; a variant not listed in
  ``campaign.methods`` runs after them.

``campaign.method_overrides = ["label:section.key=value", ...]`` then adds settings per label; a
variant inherits its base's overrides first.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ..config import Config, config_from_dict, parse_override
from ..cycling.registry import METHODS, check_method_name
from ..errors import UserError


@dataclass
class Entry:
    """A campaign entry: a registered method under a label, with fixed overrides and an
    optional tuning grid (``section.key -> values``)."""

    label: str
    method: str
    overrides: list[str] = field(default_factory=list)
    grid: dict[str, list] = field(default_factory=dict)


def _letkf_grid(c) -> dict[str, list]:
    return {"filter.radius": c.tune_radius, "filter.inflation": c.tune_inflation,
            "filter.rtps": c.tune_rtps, "filter.additive": c.tune_additive}


GC = 'filter.taper="gaspari_cohn"'

# label -> entry, from the campaign section (the grids are config keys, so they are written down)
BUILT_IN = {
    "letkf_tuned": lambda c: Entry("letkf_tuned", "letkf", [GC], _letkf_grid(c)),
    "letkf_tuned_k4": lambda c: Entry("letkf_tuned_k4", "letkf", [GC, "filter.members=4"],
                                      _letkf_grid(c)),
    "letkf_tuned_k8": lambda c: Entry("letkf_tuned_k8", "letkf", [GC, "filter.members=8"],
                                      _letkf_grid(c)),
    "letkf_paramest": lambda c: Entry("letkf_paramest", "letkf_paramest", [GC],
                                      _letkf_grid(c)),
    "gaussian_pseudo": lambda c: Entry("gaussian_pseudo", "gaussian_pseudo", grid={
        "generative.gaussian_scale": c.tune_gaussian_scale}),
}


def _split(item: str, key: str, what: str) -> tuple[str, str]:
    name, sep, rest = item.partition(":")
    if not sep or not name or not rest:
        raise UserError(f"{key} entry {item!r}: expected {what}")
    return name.strip(), rest.strip()


def parse_variants(cfg: Config) -> dict[str, str]:
    """``campaign.variants`` as ``label -> base``, checked."""
    out: dict[str, str] = {}
    for item in cfg.campaign.variants:
        label, base = _split(item, "campaign.variants", "'label:base', e.g. "
                             "'genenkf_prior:genenkf'")
        if label in METHODS or label in BUILT_IN:
            raise UserError(f"campaign.variants entry {item!r}: {label} is already a method; "
                            "a variant needs a name of its own")
        if label in out:
            raise UserError(f"campaign.variants defines {label} twice")
        if base not in METHODS and base not in BUILT_IN:
            raise UserError(f"campaign.variants entry {item!r}: unknown base {base!r}; valid: "
                            + ", ".join([*METHODS, *BUILT_IN]))
        out[label] = base
    return out


def campaign_entries(cfg: Config) -> list[Entry]:
    """The entries in table order: ``campaign.methods``, then variants not listed there."""
    c = cfg.campaign
    variants = parse_variants(cfg)
    labels = list(dict.fromkeys([*c.methods, *variants]))
    overrides: dict[str, list[str]] = {}
    for item in c.method_overrides:
        label, override = _split(item, "campaign.method_overrides",
                                 "'label:section.key=value'")
        parse_override(override)  # a malformed override fails here, naming itself
        overrides.setdefault(label, []).append(override)
    # Overrides of known entries that this campaign does not run are kept for when it does
    # (`campaign.methods=[...]` on the command line picks a subset of a shipped config).
    unknown = sorted(set(overrides) - set(labels) - set(METHODS) - set(BUILT_IN))
    if unknown:
        raise UserError(f"campaign.method_overrides names {', '.join(unknown)}, which is neither "
                        "a method, a built-in entry nor in campaign.variants")

    def resolve(label: str) -> Entry:
        if label in variants:
            base = resolve(variants[label])
            return Entry(label, base.method, base.overrides + overrides.get(label, []),
                         copy.deepcopy(base.grid))
        if label in BUILT_IN:
            entry = BUILT_IN[label](c)
        else:
            entry = Entry(label, check_method_name(label))
        entry.overrides += overrides.get(label, [])
        return entry

    return [resolve(label) for label in labels]


def run_config(cfg: Config, overrides: list[str], forcing: float | None = None,
               seed: int | None = None) -> Config:
    """A copy of ``cfg`` with ``section.key=value`` overrides (validated like the CLI's), the
    single F_nature ``forcing`` and the OSSE ``seed``."""
    data = cfg.to_dict()
    for item in overrides:
        section, key, value = parse_override(item)
        if section not in data or key not in data[section]:
            raise UserError(f"override {item!r}: unknown key {section}.{key}")
        data[section][key] = value
    if forcing is not None:
        data["osse"]["forcings"] = [forcing]
    if seed is not None:
        data["osse"]["seed"] = seed
    return config_from_dict(data)


def scored_seeds(cfg: Config) -> list[int]:
    """``campaign.seeds``, or ``[osse.seed]`` when empty; never the tuning seed."""
    seeds = list(cfg.campaign.seeds) or [cfg.osse.seed]
    if len(set(seeds)) != len(seeds):
        raise UserError(f"campaign.seeds={seeds}: values must be distinct")
    if cfg.campaign.tune_seed in seeds:
        raise UserError(f"campaign.seeds={seeds} includes campaign.tune_seed="
                        f"{cfg.campaign.tune_seed}: nothing may be scored on the data it was "
                        "tuned on")
    return seeds
