"""The Python bindings against the real library: recording from threads, rules, transitions,
deliveries, incidents, errors."""

import math
import os
import threading
import time
from pathlib import Path

import pytest

import vigilo

CONFIG = """
[host]
items = []
[evaluator]
tick = "50ms"
[[rule]]
name = "queue"
metric = "queue_depth"
labels = { team = "ops" }
annotations = { summary = "queue at {{value}}" }
[rule.critical]
threshold = 100
[[rule]]
name = "flaky"
metric = "flaky_depth"
labels = { team = "flaky" }
[rule.major]
threshold = 1
[[channel]]
name = "pager"
[[channel]]
name = "flaky-pager"
retry = { attempts = 3, backoff = "10ms" }
[[route]]
name = "ops"
match = { team = "ops" }
channels = ["pager"]
[[route]]
name = "flaky"
match = { team = "flaky" }
channels = ["flaky-pager"]
"""


class Events:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = []

    def __call__(self, event):
        with self.lock:
            self.events.append(event)

    def wait(self, kind, channel=None, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.events
                         if e.kind == kind and (channel is None or e.channel == channel)]
            if found:
                return found
            time.sleep(0.01)
        raise AssertionError(f"no {kind} event on {channel}")


def test_version():
    assert vigilo.library_version() == "0.1.0"


def test_recording_from_threads_is_exact():
    with vigilo.Monitor("[host]\nitems = []\n") as m:
        counter = m.counter("requests_total", {"route": "/api"})
        histogram = m.histogram("request_seconds", {"route": "/api"})
        threads, per_thread = 8, 20_000

        def work():
            for i in range(per_thread):
                counter.add()
                histogram.record(0.001 * (i % 50))

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert counter.value == threads * per_thread
        assert histogram.count == threads * per_thread
        m.add_counter("requests_total", 5, {"route": "/api"})
        assert counter.value == threads * per_thread + 5


def test_a_transition_and_a_delivery_reach_python():
    alerts = []
    events = Events()
    with vigilo.Monitor(CONFIG, channels={"pager": alerts.append,
                                          "flaky-pager": lambda a: None},
                        on_event=events) as m:
        queue = m.gauge("queue_depth")
        queue.set(250)
        transition = events.wait("transition")[0]
        assert transition.rule == "queue" and transition.severity == "critical"
        delivered = events.wait("delivered", "pager")[0]
        assert delivered.incident
        m.settle()
        alert = alerts[0]
        assert (alert.rule, alert.severity, alert.status) == ("queue", "critical", "firing")
        assert alert.value == 250
        assert alert.annotations["summary"] == "queue at 250"
        assert alert.labels["team"] == "ops"
        incidents = m.incidents()
        assert incidents[0]["item"]["rule"] == "queue"
        m.ack(incidents[0]["id"], by="kim", comment="looking", expires_after=60)
        events.wait("acked")
        m.unack(incidents[0]["id"])
        with pytest.raises(vigilo.NotFoundError):
            m.ack(999_999, by="kim")
        silence = m.silence(by="kim", duration=60, rule="queue", matchers={"team": "ops"})
        m.expire_silence(silence)
        assert any(e["kind"] == "opened" for e in m.history(incident=incidents[0]["id"]))
        assert m.status()["status"]["items"]
        assert "expected" in m.coverage()
        queue.set(0)
        events.wait("resolved")


def test_channel_failures_become_retries_and_permanent_failures():
    attempts = []

    def flaky(alert):
        attempts.append(alert)
        if len(attempts) == 1:
            raise vigilo.Retry("busy")

    def broken(alert):
        raise vigilo.Permanent("no such pager")

    events = Events()
    with vigilo.Monitor(CONFIG, channels={"pager": broken, "flaky-pager": flaky},
                        on_event=events) as m:
        m.set_gauge("flaky_depth", 5)
        retry = events.wait("retrying", "flaky-pager")[0]
        assert "busy" in retry.detail
        events.wait("delivered", "flaky-pager")
        assert len(attempts) == 2
        m.set_gauge("queue_depth", 500)
        failed = events.wait("failed", "pager")[0]
        assert "no such pager" in failed.detail


def test_errors_carry_the_library_message():
    with pytest.raises(vigilo.ConfigError) as e:
        vigilo.Monitor("[[rule]]\nname = \"cpu\"\nmetrc = \"x\"\n", name="rules.toml")
    assert e.value.message.startswith("rules.toml:3:1")
    with pytest.raises(vigilo.ConfigError, match="no such file|No such file|cannot read"):
        vigilo.Monitor.from_file("/nonexistent/vigilo.toml")
    m = vigilo.Monitor(CONFIG)
    with pytest.raises(vigilo.ConfigError, match="nope"):
        m.add_channel("nope", lambda a: None)
    with pytest.raises(vigilo.StateError):
        m.incidents()  # not started
    with pytest.raises(vigilo.ConfigError, match="pager"):
        m.start()  # its C channels were not given
    with pytest.raises(vigilo.VigiloError, match="invalid metric name"):
        m.counter("bad name")
    with pytest.raises(vigilo.VigiloError, match="not finite"):
        m.set_gauge("temperature", math.nan)
    g = m.gauge("temperature")
    g.set(math.nan)  # dropped and counted
    assert g.value == 0
    m.close()
    with pytest.raises(vigilo.StateError):
        m.counter("x_total")
    m.close()  # twice is fine


def test_a_callback_may_call_back_into_the_monitor():
    seen = []
    holder = {}

    def on_event(event):
        if event.kind == "transition":
            holder["m"].add_counter("callbacks_total")
            seen.append(len(holder["m"].incidents()))
            with pytest.raises(vigilo.StateError):
                holder["m"].stop()  # not its own monitor, from its own callback

    with vigilo.Monitor(CONFIG, channels={"pager": lambda a: None,
                                          "flaky-pager": lambda a: None},
                        on_event=on_event) as m:
        holder["m"] = m
        m.set_gauge("queue_depth", 500)
        m.settle()
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen
        assert m.counter("callbacks_total").value >= 1


def test_many_python_threads_record_and_read_while_the_monitor_runs():
    with vigilo.Monitor(CONFIG, channels={"pager": lambda a: None,
                                          "flaky-pager": lambda a: None}) as m:
        errors = []

        def recorder(n):
            try:
                g = m.gauge("queue_depth", {"shard": str(n)})
                c = m.counter("ops_total", {"shard": str(n)})
                for i in range(2000):
                    g.set(i % 200)
                    c.add()
                    if i % 500 == 0:
                        m.status()
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        pool = [threading.Thread(target=recorder, args=(n,)) for n in range(16)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert not errors
        assert all(m.counter("ops_total", {"shard": str(n)}).value == 2000 for n in range(16))


def test_the_readme_example_runs(capsys):
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "critical queue 250" in out


def test_the_http_endpoint_serves_the_exposition():
    import urllib.request
    with vigilo.Monitor("[host]\nitems = []\n[http]\nlisten = \"127.0.0.1:0\"\n") as m:
        m.gauge("queue_depth").set(7)
        address = m.http_address()
        assert address.startswith("127.0.0.1:") and not address.endswith(":0")
        with urllib.request.urlopen(f"http://{address}/metrics") as r:
            text = r.read().decode()
        assert "queue_depth 7\n" in text
    with vigilo.Monitor("[host]\nitems = []\n") as m:
        with pytest.raises(vigilo.NotFoundError, match=r"\[http\]"):
            m.http_address()


def test_the_installed_package_loads_the_library_built_into_it():
    """`pip install ./bindings/python` builds the C library into the package (setup.py): with
    no VIGILO_LIBRARY, that is the library loaded, wherever the package was installed."""
    package = Path(vigilo.__file__).resolve().parent
    if os.environ.get("VIGILO_LIBRARY"):
        pytest.skip("VIGILO_LIBRARY names the library to load")
    if package == Path(__file__).resolve().parent.parent / "vigilo":
        pytest.skip("imported from the source tree, not an installed package")
    assert Path(vigilo.LIBRARY_PATH).parent == package
    assert vigilo.library_version()
