"""Every option of every command, walked from the parser: numeric values get checked types with their
ranges (a bad one is argparse's one-line usage error, never a traceback), and no output option may
point into, at or over anything the command reads (issue 26, items 1, 9 and 11)."""

from __future__ import annotations

import argparse

import pytest

from lgseg.cli import _Number, _triple, _voxel_size, build_parser, main


def commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def options(parser: argparse.ArgumentParser):
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def flag(parser: argparse.ArgumentParser, dest: str) -> str | None:
    """The option string of ``dest`` (None for a positional argument)."""
    action = next(a for a in options(parser) if a.dest == dest)
    return action.option_strings[0] if action.option_strings else None


# ---- numeric options: ranged types -----------------------------------------------------------

NUMERIC = [(name, a) for name, p in commands().items() for a in options(p)
           if a.type not in (None, str) and getattr(a.type, "__name__", "") != "Path"]


def test_every_option_with_a_type_is_a_path_or_a_checked_value():
    unchecked = [f"{name} {a.option_strings[0]}" for name, a in NUMERIC
                 if not isinstance(a.type, _Number) and a.type is not _voxel_size
                 and getattr(a.type, "__qualname__", "").split(".")[0] != _triple.__name__]
    assert not unchecked, f"numeric options without a range-checked type: {unchecked}"
    assert len(NUMERIC) >= 15  # the walk sees the options (synth, preprocess, evaluate, predict, queue, ...)


def out_of_range(t: _Number) -> list[str]:
    values = ["abc", ""]
    if t.kind is float:
        values += ["nan", "inf", "-inf"]
    if t.lo is not None:
        values.append(str(t.lo) if t.above else str(t.lo - 1 if t.kind is int else t.lo - 1e-3))
    if t.hi is not None:
        values.append(str(t.hi + 1))
    return values


@pytest.mark.parametrize("name,action", [(n, a) for n, a in NUMERIC if isinstance(a.type, _Number)],
                         ids=lambda x: x if isinstance(x, str) else x.option_strings[0])
def test_a_numeric_option_out_of_its_range_is_a_one_line_usage_error(name, action, capsys):
    for value in out_of_range(action.type):
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([name, f"{action.option_strings[0]}={value}"])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"{action.option_strings[0]}: expected" in err and "Traceback" not in err, (value, err)


def test_the_reported_traceback_case_evaluate_min_region_minus_one(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--task", "instance", "--pred", "p", "--gt", "g", "--out", "o.json", "--min-region", "-1"])
    assert "--min-region: expected an integer >= 0, got '-1'" in capsys.readouterr().err


def test_values_in_range_still_parse():
    a = build_parser().parse_args(["predict", "--checkpoint", "m.pt", "--out", "o", "--radius", "0.12",
                                   "--score-threshold", "-2.5", "--min-points", "1"])
    assert (a.radius, a.score_threshold, a.min_points) == (0.12, -2.5, 1)


# ---- inputs and outputs ------------------------------------------------------------------------

# the other arguments each command needs to get past argparse; an input option under test is added to
# them (commands whose source is a required choice, preprocess and export-gt, get it that way)
MINIMAL = {
    "synth": ["--out", "{other}/o"],
    "preprocess": ["--out", "{other}/o"],
    "export-gt": ["--out", "{other}/o"],
    "evaluate": ["--pred", "{other}/p", "--gt", "{other}/g", "--out", "{other}/o.json"],
    "predict": ["--checkpoint", "{other}/m.pt", "--out", "{other}/o"],
    "render": ["--scene", "scene0000_00", "--out", "{other}/o.png"],
    "export-ply": ["--scene", "scene0000_00", "--out", "{other}/o.ply"],
    "query": ["--scene", "scene0000_00", "--text", "chair", "--out", "{other}/o.png"],
    "download-clip": [],
    "download-weights": ["sam_vit_b"],
    "queue": ["table1"],
    "report": [],
    "check-params": [],
}


def test_every_command_declares_what_it_reads_and_writes_by_its_options():
    for name, parser in commands().items():
        defaults = {a.dest for a in options(parser)}
        reads, writes = parser.get_default("reads"), parser.get_default("writes")
        assert reads is not None and writes is not None, f"{name} declares no reads/writes"
        assert set(reads) | set(writes) <= defaults, name
        path_options = {a.dest for a in options(parser) if getattr(a.type, "__name__", "") == "Path"}
        assert path_options <= set(reads) | set(writes), f"{name}: path options neither read nor written: " \
                                                         f"{path_options - set(reads) - set(writes)}"
    assert set(MINIMAL) == set(commands()), "a command without a MINIMAL entry: add it"


def combos():
    for name, parser in commands().items():
        for read in parser.get_default("reads"):
            for write in parser.get_default("writes"):
                yield name, read, write


@pytest.mark.parametrize("name,read,write", list(combos()))
def test_an_output_inside_any_input_is_refused_before_the_command_runs(name, read, write, tmp_path, capsys):
    parser = commands()[name]
    inputs, other = tmp_path / "inputs", tmp_path / "other"
    inputs.mkdir()
    (inputs / "kept.txt").write_text("the user's file\n")
    argv = [name] + [x.format(other=other) for x in MINIMAL[name]]
    read_flag, write_flag = flag(parser, read), flag(parser, write)
    argv += ([read_flag] if read_flag else []) + [str(inputs)]
    argv += ([write_flag] if write_flag else []) + [str(inputs / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "an input of this command" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in inputs.iterdir()) == ["kept.txt"]  # nothing written there


@pytest.mark.parametrize("argv", [
    ["evaluate", "--pred", "p", "--gt", "g", "--out", "{x}", "--per-class", "{x}"],
    ["query", "--scene", "scene0000_00", "--text", "chair", "--out", "{x}", "--ply", "{x}"],
    ["preprocess", "--raw", "r", "--out", "{x}", "--bank", "{x}/bank"],
])
def test_two_outputs_of_one_command_on_one_path_are_refused(argv, tmp_path, capsys):
    x = str(tmp_path / "same")
    assert main([a.format(x=x) for a in argv]) == 1
    err = capsys.readouterr().err
    assert "are one path" in err and err.count("\n") == 1, err
    assert not (tmp_path / "same").exists()
