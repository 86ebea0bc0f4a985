"""Hostile YAML: every case is refused with one located ``FILE:LINE: key.path: message``.

The table :data:`FIXED` lists the hostile documents that used to hang, exhaust memory,
escape as an internal error (ReaderError, RecursionError) or be accepted with their tags
silently dropped; :data:`HELD` lists hostile documents that were already refused well and
must stay so. Each case is run through :func:`stimgen.experiment.load_experiment` on a file
and through :func:`stimgen._yamlschema.load_yaml`.
"""

from __future__ import annotations

import re
import tracemalloc

import pytest
import yaml

from stimgen import _yamlschema
from stimgen import experiment as ex
from stimgen._yamlschema import MAX_YAML_DEPTH, MAX_YAML_VALUES, SchemaError, load_yaml


def doc(description: str = "description: plain\n", display: str = "display: {ppd: 16}\n") -> str:
    """A valid experiment whose ``description`` (line 2 on) and ``display`` lines are replaced."""
    return (
        "name: hostile\n"
        + description
        + display
        + "stimulus: {size_px: 64, rms_contrast: 0.2}\n"
        "noise: {family: log_gaussian, band_cpd: [1, 2]}\n"
        "output: {figures: false}\n"
    )


def laughs(levels: int, width: int = 9) -> str:
    """A "billion laughs" description: level k is a list of ``width`` aliases of level k-1."""
    out = "description:\n  - &l0 [" + ", ".join(["lol"] * width) + "]\n"
    for k in range(1, levels):
        out += f"  - &l{k} [" + ", ".join([f"*l{k - 1}"] * width) + "]\n"
    return out + f"  - *l{levels - 1}\n"


def laughs_in_mappings(levels: int) -> str:
    out = "description:\n  m0: &m0 {a: lol, b: lol, c: lol, d: lol}\n"
    for k in range(1, levels):
        out += f"  m{k}: &m{k} {{a: *m{k - 1}, b: *m{k - 1}, c: *m{k - 1}, d: *m{k - 1}}}\n"
    return out


def nested_aliases(levels: int, per_level: int = 60) -> str:
    """Each anchor nests ``per_level`` lists and holds the previous one: deep once expanded."""
    out = "description:\n  - &d0 " + "[" * per_level + "x" + "]" * per_level + "\n"
    for k in range(1, levels):
        out += f"  - &d{k} " + "[" * per_level + f"*d{k - 1}" + "]" * per_level + "\n"
    return out


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


# (id, document, expected line (int, or a needle whose line is expected), key path, message regex)
FIXED = [
    # 16.6 alias bombs: refused at the alias that makes the document too big, before any copy
    ("billion-laughs", doc(laughs(10)), "&l5", r"description\[5\]\[0\]",
     (r"alias \*l4 repeats 66,430 values \(anchor on line 7\); with it the document expands to more "
     r"than 100,000 values, the limit")),
    ("laughs-1e30", doc(laughs(30, width=10)), "&l4", r"description\[4\]\[7\]", r"alias \*l3 repeats 11,111"),
    ("laughs-in-mappings", doc(laughs_in_mappings(12)), "&m7", r"description\.m7\.a", r"alias \*m6 repeats"),
    ("alias-makes-deep", doc(nested_aliases(3)), "&d1", r"description\[1\]" + r"\[0\]" * 60,
     r"alias \*d0 nests values 122 levels deep here, more than 100, the limit"),
    # 16.15 internal errors: NUL (ReaderError), recursive aliases and deep nesting (RecursionError)
    ("nul-byte", doc("description: a\x00b\n"), 2, r"\(file\)",
     r"malformed YAML: the character U\+0000 \(NUL\) at column 15 is not allowed in YAML"),
    ("bell-in-comment", doc("description: ok  # ring \x07\n"), 2, r"\(file\)", r"the character U\+0007"),
    ("recursive-list", doc("description: &a [x, *a]\n"), 2, r"description\[1\]",
     r"recursive alias: \*a lies inside the value it refers to \(anchor &a on line 2\)"),
    ("recursive-mapping", doc("description: &a {b: {c: *a}}\n"), 2, r"description\.b\.c", r"recursive alias: \*a"),
    ("recursive-merge", doc("description: &a {<<: *a}\n"), 2, r"description\.<<", r"recursive alias: \*a"),
    ("recursive-key", doc("description: &a {? *a : 1}\n"), 2, r"description", r"recursive alias: \*a"),
    ("deep-flow", doc("description: " + "[" * 5000 + "]" * 5000 + "\n"), 2, r"description\[0\]\[0\]\.\.\.\(97 levels more\)",
     r"mappings and lists nested more than 100 levels deep, the limit"),
    ("deep-block", doc("description:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(150))), "k99:",
     r"description\.k0\.k1\.\.\.\(97 levels more\)", r"nested more than 100 levels deep"),
    ("deep-key", doc("description: {? " + "[\n" * 3000 + "]" * 3000 + " : 1}\n"), 100,
     r"description\[0\]\[0\]\.\.\.\(96 levels more\)",
     r"nested more than 100 levels deep"),
    # 16.16 tags on mappings and lists were dropped silently: refused like tags on scalars
    ("custom-tag-mapping", doc(display="display: !screen {ppd: 16}\n"), 3, r"display",
     r"cannot read this value: unknown tag '!screen'; custom tags such as !screen are not supported"),
    ("custom-tag-list", doc("description: !lines [a, b]\n"), 2, r"description", r"unknown tag '!lines'"),
    ("python-tag-mapping", doc(display="display: !!python/object:os.system {ppd: 16}\n"), 3, r"display",
     r"the tag '!!python/object:os.system' is not supported; stimgen reads plain YAML only"),
    ("python-apply-list", doc("description: !!python/object/apply:os.system [echo]\n"), 2, r"description",
     r"the tag '!!python/object/apply:os.system' is not supported"),
    ("set-tag", doc(display="display: !!set {ppd: 16}\n"), 3, r"display", r"the tag '!!set' is not supported"),
    ("omap-tag", doc(display="display: !!omap [ppd: 16]\n"), 3, r"display", r"the tag '!!omap' is not supported"),
    ("str-tag-on-mapping", doc(display="display: !!str {ppd: 16}\n"), 3, r"display",
     r"the tag '!!str' cannot be given to a mapping"),
    ("map-tag-on-list", doc("description: !!map [a]\n"), 2, r"description", r"the tag '!!map' cannot be given to a list"),
    ("verbatim-tag", doc(display="display: !<tag:example.com,2026:screen> {ppd: 16}\n"), 3, r"display",
     r"the tag 'tag:example.com,2026:screen' is not supported"),
    ("tag-directive", "%TAG !e! tag:example.com,2026:\n---\n" + doc(display="display: !e!screen {ppd: 16}\n"),
     5, r"display", r"the tag 'tag:example.com,2026:screen' is not supported"),
    ("tag-in-list", doc(display="display: {ppd: 16}\nconditions:\n  - !cond {band_cpd: [1, 2]}\n"), 5,
     r"conditions\[0\]", r"unknown tag '!cond'"),
    ("tag-on-key", doc(display="display: {!k ppd: 16}\n"), 3, r"display", r"unknown tag '!k'"),
    ("lone-surrogate", doc('description: "a\\ud800b"\n'), 2, r"description",
     r"the lone surrogate U\+D800 \(from a \\u escape\), which is not a character"),
    ("timestamp-tag", doc("description: !!timestamp 2026-01-01\n"), 2, r"description",
     r"the tag '!!timestamp' is not supported"),
]  # fmt: skip

HELD = [
    ("undefined-alias", doc("description: *nowhere\n"), 2, r"description",
     r"alias \*nowhere refers to no anchor &nowhere defined before it"),
    ("duplicate-anchor", doc("description: [&a x, &a y]\n"), 2, r"description\[1\]",
     r"duplicate anchor &a \(first defined on line 2\)"),
    ("two-documents", doc() + "---\nname: other\n", 7, r"\(file\)",
     r"a second YAML document begins here; a stimgen YAML file holds one document"),
    ("custom-tag-scalar", doc("description: !text hello\n"), 2, r"description", r"unknown tag '!text'"),
    ("python-tag-scalar", doc("description: !!python/name:os.system x\n"), 2, r"description",
     r"the tag '!!python/name:os.system' is not supported"),
    ("merge-a-scalar", doc(display="display: {<<: 5, ppd: 16}\n"), 3, r"display\.<<", r"cannot merge: expected a mapping"),
    ("merge-a-list-of-scalars", doc(display="display: {<<: [1], ppd: 16}\n"), 3, r"display\.<<\[0\]",
     r"cannot merge"),
    ("list-as-key", doc(display="display: {[a]: 1, ppd: 16}\n"), 3, r"display", r"keys must be plain names"),
    ("huge-integer", doc(display="display: {ppd: 1" + "0" * 5000 + "}\n"), 3, r"display\.ppd",
     r"cannot read '1000000000000000000000000000000000000000'\.\.\. \(5,001 characters\) as int"),
    ("impossible-date", doc("description: 2026-13-45\n"), 2, r"description",
     r"cannot read '2026-13-45' as timestamp: month must be in 1\.\.12"),
    ("unclosed-flow", doc("description: [a, b\n"), 3, r"\(file\)", r"malformed YAML"),
]  # fmt: skip

CASES = [pytest.param(*c[1:], id=c[0]) for c in FIXED + HELD]


def _expected_line(text: str, where: int | str) -> int:
    return where if isinstance(where, int) else line_of(text, where)


@pytest.mark.parametrize(("text", "where", "path", "message"), CASES)
def test_hostile_yaml_is_refused_with_its_line_through_load_yaml(text, where, path, message):
    try:
        _, _, problems = load_yaml(text, "x.yaml")
    except SchemaError as exc:
        first = str(exc).splitlines()[0]
    else:  # problems that do not stop the reading are returned, for the schema checks to add to
        first = SchemaError("x.yaml", problems).lines[0]
    assert re.match(rf"x\.yaml:{_expected_line(text, where)}: {path}: .*{message}", first), first


@pytest.mark.parametrize(("text", "where", "path", "message"), CASES)
def test_hostile_yaml_is_refused_with_its_line_through_load_experiment(tmp_path, text, where, path, message):
    p = tmp_path / "hostile.yaml"
    p.write_bytes(text.encode("utf-8"))
    with pytest.raises(ex.ExperimentError) as info:
        ex.load_experiment(p)
    assert isinstance(info.value, ValueError)
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"{p}:{_expected_line(text, where)}: "), first
    assert re.search(rf": {path}: .*{message}", first), first


def test_the_base_document_is_valid(tmp_path):
    # every refusal above comes from the hostile part alone
    p = tmp_path / "base.yaml"
    p.write_text(doc())
    assert ex.load_experiment(p)["display"]["ppd"] == 16


def test_alias_bomb_is_refused_before_anything_is_expanded():
    # a 30-level bomb would expand to 10**30 values; it is refused while memory stays small
    text = doc(laughs(30, width=10))
    tracemalloc.start()
    try:
        with pytest.raises(SchemaError, match="expands to more than"):
            load_yaml(text, "x.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5e6


def test_merge_bomb_merges_each_mapping_once():
    # each level merges the previous one twice: PyYAML's flattening doubles the pairs per
    # level (2**40 here); merging the already-read mappings keeps the result small and exact
    text = "m0: &m0 {a: 1, b: 2}\n"
    for k in range(1, 41):
        text += f"m{k}: &m{k} {{<<: [*m{k - 1}, *m{k - 1}], k{k}: {k}}}\n"
    data, lines, problems = load_yaml(text, "x.yaml")
    assert problems == []
    assert data["m40"] == {"a": 1, "b": 2, **{f"k{k}": k for k in range(1, 41)}}
    assert lines.of(("m40", "a")) == 1 and lines.of(("m40", "k3")) == 4


def test_aliases_are_read_once_and_located_where_written():
    text = (
        "base: &base {family: gaussan, band_cpd: [1, 2]}\n"
        "conditions:\n"
        "  - *base\n"
        "  - {<<: *base, rms_contrast: 0.1}\n"
    )
    data, lines, _ = load_yaml(text, "x.yaml")
    assert data["conditions"][0] is data["base"]  # shared, as yaml.safe_load shares it
    assert data["conditions"][1] == {"family": "gaussan", "band_cpd": [1, 2], "rms_contrast": 0.1}
    assert data == yaml.safe_load(text)
    # a value reached through an alias or a merge is located where it is written
    assert lines.of(("conditions", 0)) == 3
    assert lines.of(("conditions", 0, "family")) == 1
    assert lines.of(("conditions", 0, "band_cpd", 1)) == 1
    assert lines.of(("conditions", 1, "family")) == 1
    assert lines.of(("conditions", 1, "rms_contrast")) == 4
    assert lines.of(("conditions", 1, "band_cpd", 0), key=True) == 1


def test_validation_errors_inside_aliases_name_the_written_line(tmp_path):
    text = doc(
        display="display: {ppd: 16}\nx-shared: &c {band_cpd: [1, 2]}\nconditions:\n  - *c\n  - {<<: *c, band_cpd: 3}\n"
    ).replace("output: {figures: false}\n", "output: {figures: false, formats: [npy]}\n")
    text = text.replace("band_cpd: [1, 2]}\n", "band_cpd: [1, 2], famly: dog}\n", 1)
    p = tmp_path / "a.yaml"
    p.write_text(text)
    with pytest.raises(ex.ExperimentError) as info:
        ex.load_experiment(p)
    lines = str(info.value).splitlines()
    assert any(ln.startswith(f"{p}:4: conditions[0].famly: unknown key") for ln in lines), lines
    assert any(ln.startswith(f"{p}:4: conditions[1].famly: unknown key") for ln in lines), lines
    assert any(ln.startswith(f"{p}:7: conditions[1].band_cpd: ") for ln in lines), lines


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: !!str 5\n", "5"),
        ("a: !!float 1\n", 1.0),
        ("a: !!int '7'\n", 7),
        ("a: !!bool true\n", True),
        ("a: !!null ''\n", None),
        ("a: ! 12\n", 12),  # PyYAML resolves the non-specific tag as if untagged
        ("a: !!map {b: 1}\n", {"b": 1}),
        ("a: !!seq [1]\n", [1]),
        ("a: !<tag:yaml.org,2002:str> 5\n", "5"),
        ("a: 2026-01-01\n", yaml.safe_load("a: 2026-01-01")["a"]),  # implicit, as before
    ],
)
def test_plain_tags_still_read(text, value):
    data, _, problems = load_yaml(text, "x.yaml")
    assert problems == [] and data["a"] == value and type(data["a"]) is type(value)


def test_limits_are_stated_and_reached_exactly(monkeypatch):
    # the deepest allowed nesting loads, one level more is refused
    ok = "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH
    assert load_yaml(ok, "x.yaml")[0] is not None
    with pytest.raises(SchemaError, match=f"more than {MAX_YAML_DEPTH} levels"):
        load_yaml("[" + ok + "]", "x.yaml")
    # the size limit counts every value, aliases expanded (checked at a small limit)
    assert MAX_YAML_VALUES == 100_000
    monkeypatch.setattr(_yamlschema, "MAX_YAML_VALUES", 12)
    assert load_yaml("[" + ", ".join(["1"] * 11) + "]", "x.yaml")[0] == [1] * 11  # 12 values
    with pytest.raises(SchemaError, match="x.yaml:1: \\[11\\]: the document holds more than 12 values"):
        load_yaml("[" + ", ".join(["1"] * 12) + "]", "x.yaml")
    text = "a: &a [1, 2, 3]\nb: [*a, *a]\n"  # 1 + (1 + 4) + (1 + 1 + 4 + 4) = 16 values
    monkeypatch.setattr(_yamlschema, "MAX_YAML_VALUES", 16)
    assert load_yaml(text, "x.yaml")[0] == yaml.safe_load(text)
    monkeypatch.setattr(_yamlschema, "MAX_YAML_VALUES", 15)
    with pytest.raises(SchemaError, match=r"x.yaml:2: b\[1\]: alias \*a repeats 4 values \(anchor on line 1\)"):
        load_yaml(text, "x.yaml")


@pytest.mark.parametrize(("text", "where", "path", "message"), [pytest.param(*c[1:], id=c[0]) for c in FIXED])
def test_hostile_yaml_gives_one_line_and_exit_2_on_the_command_line(tmp_path, capsys, text, where, path, message):
    from stimgen.cli import main

    p = tmp_path / "hostile.yaml"
    p.write_bytes(text.encode("utf-8"))
    code = main(["run", str(p), "--out", str(tmp_path / "never")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err and "internal error" not in err
    assert err.splitlines()[0].startswith(f"{p}:{_expected_line(text, where)}: "), err
    assert not (tmp_path / "never").exists()
