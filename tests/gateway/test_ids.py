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


def test_ids_made_by_many_threads_at_once_never_repeat() -> None:
    """The random buffer and the last id are shared by the process's threads (the
    SQLite writer, the raw store's, the event loop): two of them must never take the
    same bytes."""
    import sys
    import threading

    made: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(made))

    def make(out: list[str]) -> None:
        start.wait()
        out.extend(new_id(now_ms=7) for _ in range(20_000))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=make, args=(out,)) for out in made]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    ids = [i for out in made for i in out]
    assert len(set(ids)) == len(ids)


def test_a_forked_child_never_counts_on_from_its_parents_last_id(monkeypatch: object) -> None:
    """After the clock stepped back every id is the previous one plus one: a child
    that kept its parent's last id would issue the parent's very next id."""
    import os
    import time

    real = time.time
    time.time = lambda: real() + 3600  # type: ignore[assignment]  # an id from the future...
    try:
        new_id()
    finally:
        time.time = real  # type: ignore[assignment]  # ...then the clock steps back
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child != new_id()
