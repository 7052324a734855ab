"""Targets are data (spec.toml) plus a small plug-in of hooks in targets/<family>/.

A spec leaf is `{ value = ..., source = "..." }`, so every number a report uses can
say where it came from. A user can copy a spec.toml, change numbers and pass its path
as the target; `family` picks the hooks.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Mapping, cast

from neurocomp.errors import TargetError
from neurocomp.hooks import TargetHooks, check_hooks

SECTIONS = ("core", "chip", "timing", "energy")
BUILTIN = ("truenorth", "loihi", "loihi2")


@dataclass(frozen=True)
class Field:
    """What one spec leaf may hold: checked before any stage reads it, so a bad number is named
    here (type, unit, range) instead of surfacing as a ZeroDivisionError or overflow far away."""

    kind: type                     # int, float (an int is accepted), bool or str
    unit: str = ""
    lo: float = -math.inf          # inclusive bounds for numbers
    hi: float = math.inf
    above: float | None = None     # exclusive lower bound (a time step must be > 0)
    choices: tuple[str, ...] = ()  # allowed strings
    required: bool = True

    def problem(self, value: Any) -> str | None:
        """Why `value` does not fit, or None."""
        if self.kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                return f"must be one of {', '.join(map(repr, self.choices))}, got {value!r}"
            return None
        if self.kind is bool:
            return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
        numeric = (int,) if self.kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric) or not _finite(value):
            return f"must be a finite {'integer' if self.kind is int else 'number'}{self._unit()}, got {value!r}"
        if not self.lo <= value <= self.hi or (self.above is not None and value <= self.above):
            return f"must lie in {self._range()}{self._unit()}, got {value!r}"
        return None

    def _unit(self) -> str:
        return f" ({self.unit})" if self.unit else ""

    def _range(self) -> str:
        lo = f"({self.above:g}" if self.above is not None else ("(-inf" if math.isinf(self.lo) else f"[{self.lo:g}")
        return f"{lo}, {'inf)' if math.isinf(self.hi) else f'{self.hi:g}]'}"


def _finite(value: int | float) -> bool:
    """A finite float, or an int a float can hold (TOML integers may have any number of digits)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _count(lo: int = 1, hi: float = 2 ** 24, unit: str = "") -> Field:
    return Field(int, unit, lo, hi)


def _energy(unit: str = "J") -> Field:
    return Field(float, unit, 0.0)


# Fields every family has; targets/<family>/schema.py adds its own (SPEC_FIELDS). A spec leaf in
# neither table is refused: a misspelt key would otherwise fall back to a default silently.
COMMON_FIELDS: dict[str, Field] = {
    "core.neurons": _count(unit="neurons per core"),
    "core.axons": _count(unit="input axons per core"),
    "chip.cores": _count(hi=2 ** 20, unit="cores per chip"),
    "chip.mesh_cols": _count(hi=2 ** 20, unit="routers"),
    "chip.mesh_rows": _count(hi=2 ** 20, unit="routers"),
    "chip.cores_per_router": _count(hi=2 ** 20, unit="cores"),
    "chip.max_chips": _count(hi=2 ** 16, unit="chips"),
    "chip.chips_x": _count(hi=2 ** 16, unit="chips"),
    "chip.route_dx_min": Field(int, "routers", -2 ** 31, 0),
    "chip.route_dx_max": Field(int, "routers", 0, 2 ** 31),
    "chip.interchip_hop_weight": Field(float, "on-chip hops", 0.0),
    **{f"energy.{k}": _energy() for k in ("synaptic_event_j", "neuron_update_active_j", "neuron_update_idle_j",
                                          "spike_j", "hop_ew_j", "hop_ns_j", "interchip_hop_j")},
    "energy.static_power_w": _energy("W per chip"),
}


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
    hooks: TargetHooks   # the targets/<family> package (neurocomp.hooks)

    @property
    def name(self) -> str:
        return self.spec.name


def _parse(raw: Mapping[str, Any], origin: str) -> TargetSpec:
    head = raw.get("target", {})
    for key in ("name", "family"):
        if not isinstance(head, dict) or not isinstance(head.get(key), str):
            raise TargetError(f"{origin}: [target] needs a string '{key}'")
    if not isinstance(head.get("description", ""), str):
        raise TargetError(f"{origin}: [target] description must be a string")
    unknown = sorted(set(raw) - set(SECTIONS) - {"target"})
    if unknown:
        raise TargetError(f"{origin}: unknown section(s) {unknown}; a spec has [target] and {list(SECTIONS)}")
    values: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, str]] = {}
    for section in SECTIONS:
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise TargetError(f"{origin}: {section} must be a table")
        values[section], sources[section] = {}, {}
        for leaf, item in table.items():
            if not isinstance(item, dict) or "value" not in item or not isinstance(item.get("source"), str):
                raise TargetError(f"{origin}: {section}.{leaf} must be {{ value = ..., source = \"...\" }}")
            values[section][leaf] = item["value"]
            sources[section][leaf] = item["source"]
    _validate(values, spec_fields(head["family"], origin), origin)
    frozen_vals = MappingProxyType({k: MappingProxyType(v) for k, v in values.items()})
    frozen_srcs = MappingProxyType({k: MappingProxyType(v) for k, v in sources.items()})
    return TargetSpec(head["name"], head["family"], head.get("description", ""), frozen_vals, frozen_srcs)


def _hooks(family: str, origin: str = "") -> TargetHooks:
    where = f"{origin}: " if origin else ""
    if not family.isidentifier():
        raise TargetError(f"{where}target family {family!r} is not a module name in targets/")
    try:
        return _checked(family)
    except ModuleNotFoundError:
        raise TargetError(f"{where}unknown target family {family!r}: no hooks in targets/ "
                          f"(known: truenorth, loihi)") from None


@functools.cache
def _checked(family: str) -> TargetHooks:
    """The family's hooks module, checked against the protocol once per process (the check inspects every
    hook's signature: milliseconds that a sweep would pay per grid point)."""
    module = importlib.import_module(f"neurocomp.targets.{family}")
    check_hooks(module, family)
    return cast(TargetHooks, module)   # a module that passed check_hooks


def extension(target: Target, name: str) -> ModuleType | None:
    """The family's optional module targets/<family>/<name>.py (what a backend or export needs of it: `lava`,
    `netx`), loaded on first use because it imports what the hooks do not (Lava, h5py); None if it has none."""
    module = f"neurocomp.targets.{target.spec.family}.{name}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None


@dataclass(frozen=True)
class CompileFlag:
    """A `neurocomp compile` option a family declares in targets/<family>/cli.toml; its value sets one
    CompileOptions field. Data, not a hook, so that building the parser imports no family's hooks (torch)."""

    flag: str
    field: str
    choices: tuple[str, ...]
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def compile_flags() -> tuple[CompileFlag, ...]:
    """The compile options the built-in families declare, in BUILTIN order."""
    return tuple(CompileFlag(f["flag"], f["field"], tuple(f["choices"]), f["help"])
                 for _, f in _declared("compile"))


@dataclass(frozen=True)
class ExportFlag:
    """A `neurocomp export PROGRAM` output a family declares in targets/<family>/cli.toml: a file its `export`
    module (targets/<family>/export.py) writes from a compiled program of that family. Data, as CompileFlag."""

    family: str
    flag: str
    metavar: str
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def export_flags() -> tuple[ExportFlag, ...]:
    """The program exports the built-in families declare, in BUILTIN order."""
    return tuple(ExportFlag(family, f["flag"], f["metavar"], f["help"]) for family, f in _declared("export"))


@dataclass(frozen=True)
class ArtifactExport:
    """An extra file a family adds to a compiled program (`neurocomp compile --export NAME`), declared in its
    cli.toml ([[artifact]]) and written by `function` of its extension `module` (neurocomp.target.extension)."""

    family: str
    name: str
    file: str
    module: str
    function: str
    help: str


def artifact_exports() -> tuple[ArtifactExport, ...]:
    """The extra program files the built-in families declare, in BUILTIN order."""
    return tuple(ArtifactExport(family, a["name"], a["file"], a["module"], a["function"], a["help"])
                 for family, a in _declared("artifact"))


def _declared(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(family, entry) for every [[kind]] entry of the built-in families' cli.toml."""
    out = []
    for name in BUILTIN:
        path = resources.files("neurocomp.targets").joinpath(name, "cli.toml")
        if path.is_file():
            out += [(name, entry) for entry in tomllib.loads(path.read_text()).get(kind, [])]
    return out


def spec_fields(family: str, origin: str = "") -> dict[str, Field]:
    """The fields a spec of this family may hold: COMMON_FIELDS plus the family's SPEC_FIELDS."""
    _hooks(family, origin)
    try:
        own = importlib.import_module(f"neurocomp.targets.{family}.schema")
    except ModuleNotFoundError:
        raise TargetError(f"{origin}: target family {family!r} has no schema (targets/{family}/schema.py)") from None
    return COMMON_FIELDS | own.SPEC_FIELDS


def _validate(values: Mapping[str, Mapping[str, Any]], fields: Mapping[str, Field], origin: str) -> None:
    """Every leaf against its Field, every required field present, then the checks that relate fields."""
    for section, table in values.items():
        for leaf, value in table.items():
            key = f"{section}.{leaf}"
            if key not in fields:
                raise TargetError(f"{origin}: unknown spec field {key} (misspelt? this family knows "
                                  f"{', '.join(k for k in fields if k.startswith(section + '.'))})")
            why = fields[key].problem(value)
            if why:
                raise TargetError(f"{origin}: {key} {why}")
    for key, f in fields.items():
        section, _, leaf = key.partition(".")
        if f.required and leaf not in values[section]:
            raise TargetError(f"{origin}: spec is missing {key}")
    chip = values["chip"]
    if chip["mesh_cols"] * chip["mesh_rows"] * chip["cores_per_router"] != chip["cores"]:
        raise TargetError(f"{origin}: chip.mesh_cols x mesh_rows x cores_per_router != chip.cores")
    for lo, hi in (("core.delay_min", "core.delay_max"), ("core.weight_exp_min", "core.weight_exp_max"),
                   ("timing.barrier_min_s", "timing.barrier_max_s")):
        a, b = (values[k.partition(".")[0]].get(k.partition(".")[2]) for k in (lo, hi))
        if a is not None and b is not None and a > b:
            raise TargetError(f"{origin}: {lo} ({a}) exceeds {hi} ({b})")


def load_spec(name_or_path: str) -> TargetSpec:
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise TargetError(f"target spec {path} not found")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TargetError(f"{path}: not a text TOML file (not UTF-8)") from None
        except OSError as e:
            raise TargetError(f"cannot read target spec {path}: {e.strerror}") from None
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
    return Target(spec, _hooks(spec.family))
