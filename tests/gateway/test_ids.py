from gateway.db.ids import new_id


def test_ids_strictly_increase_within_a_process() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 for i in ids)


def test_fixed_time_ids_sort_by_time() -> None:
    assert new_id(now_ms=1_000) < new_id(now_ms=2_000)
