"""This process's fixed windows: the internal endpoints' limit without shared storage, and the fallback."""

from limits import parse

from app.security.ratelimit import LocalWindows

LIMIT = parse("3 per minute")


class Timer:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_allows_its_amount_then_says_how_long_to_wait():
    timer = Timer()
    windows = LocalWindows(timer=timer)
    assert [windows.hit(LIMIT, "a") for _ in range(3)] == [None, None, None]
    timer.now += 20
    assert windows.hit(LIMIT, "a") == 40  # the window opened at 1000 and ends at 1060
    assert windows.hit(LIMIT, "b") is None  # keys count apart


def test_a_new_window_starts_once_the_old_one_ends():
    timer = Timer()
    windows = LocalWindows(timer=timer)
    for _ in range(4):
        windows.hit(LIMIT, "a")
    timer.now += 59.5
    assert windows.hit(LIMIT, "a") == 1  # never "retry after 0"
    timer.now += 0.5
    assert windows.hit(LIMIT, "a") is None


def test_ended_windows_are_swept_when_the_table_is_full():
    timer = Timer()
    windows = LocalWindows(max_keys=2, timer=timer)
    windows.hit(LIMIT, "old")
    windows.hit(LIMIT, "live")
    timer.now += 30
    windows.hit(LIMIT, "live")
    timer.now += 31  # "old" and "live" both ended; a third key sweeps them
    assert windows.hit(LIMIT, "new") is None
    assert len(windows._windows) == 1


def test_a_flood_of_live_keys_cannot_make_every_new_key_pay_a_sweep():
    timer = Timer()
    windows = LocalWindows(max_keys=4, timer=timer)
    for key in "abcd":
        windows.hit(LIMIT, key)  # four live windows: the table is full
    assert windows.hit(LIMIT, "e") is None
    assert len(windows._windows) == 1  # started over rather than sweeping again for every new key
