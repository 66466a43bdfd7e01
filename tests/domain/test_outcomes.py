"""The partial outcomes of a file's interchanges (gateway.domain.outcomes): the
reason's wording and the timeline detail, pure."""

from __future__ import annotations

from gateway.domain.outcomes import (
    InterchangeResult,
    mark_duplicates,
    outcome_detail,
    summarize,
    with_outcomes,
)


def result(
    index: int, documents: int = 2, rejected: int = 0, envelope: str | None = None
) -> InterchangeResult:
    return InterchangeResult(index, "ZZ/ACME", f"{index:09d}", 2, documents, rejected, envelope)


def test_every_outcome_is_counted_and_the_others_are_named() -> None:
    results = mark_duplicates(
        [
            result(1),
            result(2),
            result(3, documents=1, rejected=1),
            result(
                4,
                documents=0,
                rejected=2,
                envelope="interchange 000000004 from ZZ/ACME rejected: TA1 note 022 (x)",
            ),
            result(5, documents=0, rejected=2),
        ],
        {2: "01JFIRST"},
    )
    assert [r.outcome for r in results] == [
        "accepted",
        "duplicate",
        "partly_rejected",
        "rejected",
        "rejected",
    ]
    assert summarize(results) == (
        "5 interchanges: 1 accepted, 1 partly rejected, 2 rejected, 1 duplicate; "
        "000000002 duplicate of message 01JFIRST (TA1 025); 000000003 1 of 2 set(s) rejected; "
        "000000004 rejected (TA1 note 022 (x)); 000000005 2 of 2 set(s) rejected"
    )
    detail = outcome_detail(results)
    assert detail["total"] == 5 and detail["rejected"] == 2 and "accepted" in detail
    assert [d["control"] for d in detail["not_accepted"]] == [f"{n:09d}" for n in (2, 3, 4, 5)]


def test_nothing_partial_says_nothing_and_a_long_list_is_cut() -> None:
    assert summarize([result(1)]) is None and summarize([result(1), result(2)]) is None
    assert with_outcomes([result(1), result(2)], None, {"documents": 4}) == (
        None,
        {"documents": 4, "interchanges": {"total": 2, "accepted": 2, "not_accepted": []}},
    )
    many = mark_duplicates([result(n) for n in range(1, 10)], {n: "01JX" for n in range(2, 10)})
    text = summarize(many)
    assert text is not None and text.endswith("; and 3 more") and text.count("duplicate of message") == 5
    reason, _ = with_outcomes(many, "1 set(s) rejected: x", None)
    assert (
        reason is not None
        and reason.startswith("9 interchanges:")
        and reason.endswith("; 1 set(s) rejected: x")
    )
