"""The generated per-segment checks agree with the detailed validator: a segment
they call clean has no element error, and clean real segments are called clean."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.x12.codes import ElementSyntaxCode as E
from translators.x12.codes import SegmentSyntaxCode as S
from translators.x12.compiled import segment_source
from translators.x12.grammar import CompositeRule, ElementRule, SegmentRule, load_grammar
from translators.x12.show_check import main
from translators.x12.validation import COMPILE_AFTER, check_elements, check_segments

SETS = [("850", "004010"), ("856", "004010"), ("810", "004010"), ("855", "005010"), ("999", "005010")]


def _rules() -> list[SegmentRule]:
    found: list[SegmentRule] = []
    for set_id, version in SETS:
        grammar = load_grammar(set_id, version)
        assert grammar is not None
        found.extend(
            rule for rules in grammar.segments.values() for rule in rules if rule.elements is not None
        )
    return found


RULES = _rules()

# values that probe every branch: empty, codes, digits, signs, points, dates,
# times, control characters, composites and repetitions, lengths at the bounds
VALUES = st.one_of(
    st.just(""),
    st.sampled_from(["00", "SA", "EA", "UP", "VN", "92", "ST", "BY", "F", "002", "011", "A", "C", "U", "Z"]),
    st.sampled_from(
        ["20240305", "20240230", "240305", "1430", "2460", "143005", "9", "-12", "1.5", "-.5", "12."]
    ),
    st.sampled_from(
        ["1", "12345678901234567890", "ABC", "A\x07B", "CAFÉ", "X>Y", "A^B", ">", "^", "1>2>3>4>5>6>7>8"]
    ),
    st.text(alphabet="0123456789.-AZ >^\x01", max_size=12),
)


def _good_value(part: ElementRule | CompositeRule, draw: st.DrawFn) -> str:
    """A value the element accepts (most of the time), so whole segments are often clean."""
    if isinstance(part, CompositeRule):
        components = part.components
        return ">".join(_good_value(c, draw) for c in components[: draw(st.integers(1, len(components)))])
    if part.codes:
        return draw(st.sampled_from(sorted(part.codes)))
    data_type, lo, hi = part.data_type, part.min_length, part.max_length
    if data_type == "DT":
        return "20240305" if hi >= 8 else "240305"
    if data_type == "TM":
        return "1430"
    if data_type.startswith("N") or data_type == "R":
        return "7" * max(lo, 1)
    return "A" * max(lo, 1)


@st.composite
def segments(draw: st.DrawFn) -> tuple[SegmentRule, list[str]]:
    rule = draw(st.sampled_from(RULES))
    assert rule.elements is not None
    values = [""] * max(part.position for part in rule.elements)
    for part in rule.elements:
        if part.mandatory or draw(st.booleans()):
            values[part.position - 1] = _good_value(part, draw)
    for _ in range(draw(st.integers(0, 2))):  # spoil a few places
        index = draw(st.integers(0, len(values)))
        probe = draw(VALUES)
        if index == len(values):
            values.append(probe)
        else:
            values[index] = probe
    return rule, values[: draw(st.integers(0, len(values)))] if draw(st.booleans()) else values


@settings(max_examples=1500, deadline=None)
@given(case=segments(), repetition=st.sampled_from([None, "^"]))
def test_clean_means_no_element_error(case: tuple[SegmentRule, list[str]], repetition: str | None) -> None:
    rule, values = case
    segment = [rule.tag, *values]
    if rule.clean_check(repetition is not None)(segment, ">", repetition):
        assert check_elements(segment, rule, ">", repetition) is None, segment


@pytest.mark.parametrize(
    ("set_id", "tag", "segment"),
    [
        ("850", "PO1", ["PO1", "1", "12", "EA", "3.25", "", "UP", "012345678905", "VN", "V1"]),
        ("850", "BEG", ["BEG", "00", "SA", "PO1", "", "20240305"]),
        ("850", "DTM", ["DTM", "002", "20240320"]),
        ("856", "HL", ["HL", "2", "1", "O"]),
        ("810", "IT1", ["IT1", "1", "5", "EA", "10.00", "", "UP", "012345678905"]),
    ],
)
def test_clean_segments_take_the_fast_path(set_id: str, tag: str, segment: list[str]) -> None:
    grammar = load_grammar(set_id, "004010")
    assert grammar is not None
    rule = grammar.segments[tag][0]
    assert check_elements(segment, rule, ">") is None
    assert rule.clean_check(False)(segment, ">", None)


def test_errors_fall_to_the_detailed_path() -> None:
    grammar = load_grammar("850", "004010")
    assert grammar is not None
    rule = grammar.segments["PO1"][0]
    check = rule.clean_check(False)
    assert not check(["PO1", "1", "12", "EA", "3.25", "", "UP"], ">", None)  # P0607 half a pair
    assert not check(["PO1", "1", "x2", "EA"], ">", None)  # PO102 not numeric
    assert not check(["PO1", "1", "12", "EA", "3.25", "", "UP", "1", *[""] * 20, "extra"], ">", None)


def test_generated_source_is_printable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["850", "004010", "BEG"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("def check(seg, comp, rep):  # BEG")
    grammar = load_grammar("850", "004010")
    assert grammar is not None
    assert segment_source(grammar.segments["BEG"][0], False)[0] == printed.rstrip("\n") + "\n"


def test_a_check_is_compiled_only_for_a_rule_used_often() -> None:
    """Compiling costs what hundreds of detailed checks cost: the validator checks a
    rule's first COMPILE_AFTER segments on the detailed path (a one-set file compiles
    nothing), then with the generated check; the findings are the same either way."""
    grammar = copy.deepcopy(load_grammar("850", "004010"))  # a fresh rule, nothing compiled yet
    assert grammar is not None
    rule = grammar.segments["PO1"][0]
    assert rule.clean_checks == [None, None]
    good = ["ST", "850", "0001"], ["BEG", "00", "SA", "PO1", "", "20240101"]
    line, bad = ["PO1", "1", "12", "EA", "3.25", "", "UP", "012345678905"], ["PO1", "1", "x2", "EA"]
    set_a = [*good, line, bad, ["CTT", "2"], ["SE", "6", "0001"]]
    first = check_segments(set_a, grammar, ">")
    assert rule.clean_checks == [None, None] and rule.uses[0] == 2
    for _ in range(COMPILE_AFTER):
        assert check_segments(set_a, grammar, ">") == first
    assert rule.clean_checks[0] is not None and rule.clean_checks[1] is None
    assert [(e.tag, e.code, [x.code for x in e.elements]) for e in first] == [
        ("PO1", S.HAS_ELEMENT_ERRORS, [E.INVALID_CHARACTER])
    ]
