"""A family's own `neurocomp compile` options come from its targets/<family>/cli.toml, not from the CLI's code."""
from __future__ import annotations

from neurocomp.cli import _parser
from neurocomp.compiler import CompileOptions
from neurocomp.target import compile_flags, load_target


def test_truenorth_and_loihi_declare_their_weight_modes():
    flags = {f.flag: f for f in compile_flags()}
    assert list(flags) == ["--tn-weights", "--loihi-weights"]
    for flag, family in (("--tn-weights", "truenorth"), ("--loihi-weights", "loihi")):
        declared = flags[flag]
        assert (declared.field, declared.dest) == ("weights", flag[2:].replace("-", "_"))
        assert declared.choices == load_target(family).hooks.WEIGHT_MODES
        assert declared.field in CompileOptions.__dataclass_fields__


def test_the_parser_takes_the_declared_option():
    args = _parser().parse_args(["compile", "m.pt", "--target", "truenorth", "--tn-weights", "levels"])
    assert args.tn_weights == "levels"
    assert _parser().parse_args(["compile", "m.pt", "--target", "loihi"]).tn_weights is None
    assert _parser().parse_args(["compile", "m.pt", "--target", "loihi", "--loihi-weights", "coarse"]).loihi_weights == "coarse"
