from gateway.db.ids import new_id


def test_ids_strictly_increase_within_a_process() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 for i in ids)


def test_fixed_time_ids_sort_by_time() -> None:
    assert new_id(now_ms=1_000) < new_id(now_ms=2_000)


def test_a_forked_child_never_repeats_its_parents_random_bits() -> None:
    """Ids draw their random part from a buffer of os.urandom bytes: a fork must not
    copy it, or parent and child would issue the same ids in the same millisecond."""
    import os

    new_id()  # the buffer is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id's random part, then out
        os.write(write, new_id(now_ms=0).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child != new_id(now_ms=0)
