"""The boundary's promises from Python: values the header does not list, stop and close
waiting for running callbacks, NULL arguments named, bounded error texts, a refused close,
and leaving the interpreter with callbacks in flight (in a child interpreter)."""

import ctypes
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import vigilo

SLOW = """
[host]
items = []
[evaluator]
tick = "50ms"
[[rule]]
name = "queue"
metric = "queue_depth"
[rule.critical]
threshold = 100
[[channel]]
name = "slow"
retry = { attempts = 1 }
[[route]]
name = "all"
channels = ["slow"]
"""


def wait(flag: threading.Event, what: str) -> None:
    assert flag.wait(10), f"no {what}"


def test_a_status_the_header_does_not_list_has_a_name():
    assert vigilo.status_name(0) == "ok"
    for value in (11, 99, -1):
        assert vigilo.status_name(value) == "unknown status"


def test_a_null_out_argument_is_named_before_anything_else():
    lib = vigilo._lib
    lib.vigilo_monitor_new_from_file.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    assert lib.vigilo_monitor_new_from_file(b"x.toml", None) == 1  # NULL_ARGUMENT, not IO
    assert b"out is NULL" in vigilo._last_error()
    with vigilo.Monitor(SLOW, channels={"slow": lambda a: None}) as m:
        lib.vigilo_monitor_http_address.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        assert lib.vigilo_monitor_http_address(m._ptr, None) == 1  # not NOT_FOUND
        assert b"out is NULL" in vigilo._last_error()


def test_a_ten_megabyte_line_gives_a_short_error():
    half = 5_000_000
    text = 'x = "' + "a" * half + '" ; ' + "b" * half
    with pytest.raises(vigilo.ConfigError) as e:
        vigilo.Monitor(text, name="huge.toml")
    assert len(str(e.value)) < 2000
    assert f"huge.toml:1:{5 + half + 3}" in str(e.value)


def test_stop_waits_for_a_delivery_running_past_its_deadline():
    started, done = threading.Event(), threading.Event()

    def slow(alert):
        started.set()
        time.sleep(1.0)
        done.set()

    m = vigilo.Monitor(SLOW, channels={"slow": slow})
    m.start()
    m.set_gauge("queue_depth", 500)
    wait(started, "delivery")
    m.stop(deadline=0.1)
    assert done.is_set(), "stop returned while the delivery was still running"
    m.close()


def test_a_refused_close_leaves_the_monitor_usable():
    refused, seen = threading.Event(), []

    def on_event(event):
        if event.kind == "transition" and not refused.is_set():
            try:
                holder.close()
            except vigilo.StateError as e:
                seen.append(str(e))
            refused.set()

    holder = vigilo.Monitor(SLOW, channels={"slow": lambda a: None}, on_event=on_event)
    with holder as m:
        m.set_gauge("queue_depth", 500)
        wait(refused, "refused close")
        assert seen and "own callback" in seen[0]
        # Still open and running: it answers, records, and closes for real later.
        assert m.status()["status"]["items"]
        m.add_counter("after_total")
    with pytest.raises(vigilo.StateError):
        m.status()


def test_close_from_two_threads_both_wait_for_the_running_callback():
    started, done = threading.Event(), threading.Event()

    def slow(alert):
        started.set()
        time.sleep(0.8)
        done.set()

    m = vigilo.Monitor(SLOW, channels={"slow": slow}).start()
    m.set_gauge("queue_depth", 500)
    wait(started, "delivery")
    seen = []
    closers = [threading.Thread(target=lambda: (m.close(), seen.append(done.is_set())))
               for _ in range(2)]
    for t in closers:
        t.start()
    for t in closers:
        t.join()
    assert seen == [True, True]


def run_child(body: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent(body)
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=env)


CHILD_HEAD = f"""
import threading, time, vigilo
SLOW = {SLOW!r}
started = threading.Event()
def slow(alert):
    started.set()
    time.sleep(0.5)
    print("delivery returned", flush=True)
events = []
"""


def test_exiting_with_callbacks_in_flight_closes_the_monitor_in_order():
    child = run_child(CHILD_HEAD + """
m = vigilo.Monitor(SLOW, channels={"slow": slow}, on_event=lambda e: events.append(e.kind))
m.start()
m.set_gauge("queue_depth", 500)
assert started.wait(10)
print("leaving", flush=True)
# No close: the interpreter exits with the delivery running.
""")
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["leaving", "delivery returned"], child.stdout


def test_exiting_without_the_orderly_close_does_not_abort():
    # Without the exit handler, interpreter finalisation ends the threads that wait to run a
    # callback (a forced unwind): with events and deliveries flowing all the time, some do.
    # The process must still exit cleanly.
    child = run_child(CHILD_HEAD.replace('tick = "50ms"', 'tick = "10ms"') + """
import atexit
if hasattr(vigilo, "_close_at_exit"):
    atexit.unregister(vigilo._close_at_exit)
def quick(alert):
    started.set()
    time.sleep(0.01)
m = vigilo.Monitor(SLOW, channels={"slow": quick}, on_event=lambda e: events.append(e.kind))
m.start()
def flap():
    value = 0
    while True:
        value = 500 - value
        m.set_gauge("queue_depth", value)
        time.sleep(0.001)
threading.Thread(target=flap, daemon=True).start()
assert started.wait(10)
time.sleep(0.2)
print("leaving", flush=True)
""")
    assert child.returncode == 0, (child.returncode, child.stderr)
    assert "FATAL" not in child.stderr
