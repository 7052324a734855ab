"""Targets are data (spec.toml) plus a small plug-in of hooks in targets/<family>/.

A spec leaf is `{ value = ..., source = "..." }`, so every number a report uses can
say where it came from. A user can copy a spec.toml, change numbers and pass its path
as the target; `family` picks the hooks.
"""
from __future__ import annotations

import hashlib
import importlib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from neurocomp.errors import TargetError

SECTIONS = ("core", "chip", "timing", "energy")
REQUIRED = {
    "core": ("neurons", "axons"),
    "chip": ("cores", "mesh_cols", "mesh_rows", "cores_per_router", "max_chips", "chips_x",
             "route_dx_min", "route_dx_max", "interchip_hop_weight"),
    "energy": ("synaptic_event_j", "neuron_update_active_j", "neuron_update_idle_j", "spike_j",
               "hop_ew_j", "hop_ns_j", "interchip_hop_j", "static_power_w"),
    "timing": (),
}
BUILTIN = ("truenorth", "loihi", "loihi2")


@dataclass(frozen=True)
class TargetSpec:
    name: str
    family: str
    description: str
    values: Mapping[str, Mapping[str, Any]]
    sources: Mapping[str, Mapping[str, str]]
    digest: str = field(default="")
    text: str = field(default="", repr=False)

    def __getitem__(self, key: str) -> Any:
        section, _, leaf = key.partition(".")
        try:
            return self.values[section][leaf]
        except KeyError:
            raise TargetError(f"target {self.name}: spec has no {key}") from None

    def get(self, key: str, default: Any = None) -> Any:
        section, _, leaf = key.partition(".")
        return self.values.get(section, {}).get(leaf, default)

    def source(self, key: str) -> str:
        section, _, leaf = key.partition(".")
        return self.sources.get(section, {}).get(leaf, "")

    @property
    def cores_per_chip(self) -> int:
        return int(self["chip.cores"])

    @property
    def max_cores(self) -> int:
        return self.cores_per_chip * int(self["chip.max_chips"])


@dataclass(frozen=True)
class Target:
    spec: TargetSpec
    hooks: Any  # the targets/<family> module: quantize_layer, build_cores, neuron model, ...

    @property
    def name(self) -> str:
        return self.spec.name


def _parse(raw: Mapping[str, Any], origin: str) -> TargetSpec:
    head = raw.get("target", {})
    for key in ("name", "family"):
        if not isinstance(head.get(key), str):
            raise TargetError(f"{origin}: [target] needs a string '{key}'")
    values: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, str]] = {}
    for section in SECTIONS:
        table = raw.get(section, {})
        values[section], sources[section] = {}, {}
        for leaf, item in table.items():
            if not isinstance(item, dict) or "value" not in item or not isinstance(item.get("source"), str):
                raise TargetError(f"{origin}: {section}.{leaf} must be {{ value = ..., source = \"...\" }}")
            values[section][leaf] = item["value"]
            sources[section][leaf] = item["source"]
        for leaf in REQUIRED[section]:
            if leaf not in values[section]:
                raise TargetError(f"{origin}: spec is missing {section}.{leaf}")
    for section, leaf in (("core", "neurons"), ("core", "axons"), ("chip", "cores"), ("chip", "max_chips")):
        v = values[section][leaf]
        if not isinstance(v, int) or v < 1:
            raise TargetError(f"{origin}: {section}.{leaf} must be a positive integer, got {v!r}")
    chip = values["chip"]
    if chip["mesh_cols"] * chip["mesh_rows"] * chip["cores_per_router"] != chip["cores"]:
        raise TargetError(f"{origin}: chip.mesh_cols x mesh_rows x cores_per_router != chip.cores")
    frozen_vals = MappingProxyType({k: MappingProxyType(v) for k, v in values.items()})
    frozen_srcs = MappingProxyType({k: MappingProxyType(v) for k, v in sources.items()})
    return TargetSpec(head["name"], head["family"], head.get("description", ""), frozen_vals, frozen_srcs)


def load_spec(name_or_path: str) -> TargetSpec:
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise TargetError(f"target spec {path} not found")
        text = path.read_text()
    elif name_or_path in BUILTIN:
        text = resources.files("neurocomp.targets").joinpath(name_or_path, "spec.toml").read_text()
    else:
        raise TargetError(f"unknown target {name_or_path!r}; choose one of {', '.join(BUILTIN)} or a spec.toml path")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{name_or_path}: invalid TOML: {exc}") from None
    spec = _parse(raw, name_or_path)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return TargetSpec(spec.name, spec.family, spec.description, spec.values, spec.sources, digest, text)


def load_target(name_or_path: str) -> Target:
    spec = load_spec(name_or_path)
    try:
        hooks = importlib.import_module(f"neurocomp.targets.{spec.family}")
    except ModuleNotFoundError:
        raise TargetError(f"target family {spec.family!r} has no hooks in targets/") from None
    return Target(spec, hooks)
