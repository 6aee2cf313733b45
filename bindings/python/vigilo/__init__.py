"""vigilo: embeddable monitoring, through its C API (ctypes).

A :class:`Monitor` is created from TOML, given channels (Python callables) and an event
callback, and started (``with Monitor(...) as m:`` starts it and closes it). Metric handles
(:class:`Counter`, :class:`Gauge`, :class:`Histogram`) record from any thread without locking.

Callbacks run on threads of the library's. :meth:`Monitor.close` returns once none of the
monitor's callbacks runs or can run again (it waits for those running, as long as they take);
from inside one of the monitor's own callbacks it is refused (:class:`StateError`) and the
monitor stays usable. Monitors still open when the interpreter exits are closed by an
``atexit`` handler, before the interpreter tears its threads down; a callback the library
would call after that is skipped.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import json
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

__all__ = [
    "Alert", "ConfigError", "Counter", "Event", "Gauge", "Histogram", "LIBRARY_PATH", "Monitor",
    "NotFoundError", "Permanent", "Retry", "StateError", "VigiloError", "library_version",
    "status_name",
]

# --------------------------------------------------------------------------- the library


def _find_library() -> str:
    explicit = os.environ.get("VIGILO_LIBRARY")
    if explicit:
        return explicit
    here = Path(__file__).resolve()
    # Built into the package by `pip install` (setup.py).
    for name in ("libvigilo_c.so", "libvigilo_c.dylib", "vigilo_c.dll"):
        bundled = here.parent / name
        if bundled.is_file():
            return str(bundled)
    for root in here.parents:
        for profile in ("release", "debug"):
            candidate = root / "target" / profile / "libvigilo_c.so"
            if candidate.is_file():
                return str(candidate)
    found = ctypes.util.find_library("vigilo_c")
    if found:
        return found
    raise OSError(
        "libvigilo_c not found: install this package with pip (it builds the library into "
        "it), or set VIGILO_LIBRARY to a built libvigilo_c, or put it on the library path"
    )


#: The path of the C library this package loaded.
LIBRARY_PATH = _find_library()
_lib = ctypes.CDLL(LIBRARY_PATH)


class _Label(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_char_p)]


class _Alert(ctypes.Structure):
    _fields_ = [
        ("rule", ctypes.c_char_p), ("metric", ctypes.c_char_p), ("severity", ctypes.c_char_p),
        ("previous", ctypes.c_char_p), ("peak", ctypes.c_char_p), ("status", ctypes.c_char_p),
        ("has_value", ctypes.c_bool), ("value", ctypes.c_double),
        ("has_threshold", ctypes.c_bool), ("threshold", ctypes.c_double),
        ("since_unix_nanos", ctypes.c_int64), ("at_unix_nanos", ctypes.c_int64),
        ("incident", ctypes.c_uint64), ("idempotency_key", ctypes.c_char_p),
        ("fingerprint", ctypes.c_char_p),
        ("labels", ctypes.POINTER(_Label)), ("labels_len", ctypes.c_size_t),
        ("annotations", ctypes.POINTER(_Label)), ("annotations_len", ctypes.c_size_t),
        ("recipients", ctypes.POINTER(ctypes.c_char_p)), ("recipients_len", ctypes.c_size_t),
        ("json", ctypes.c_char_p),
    ]


class _Event(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_char_p), ("seq", ctypes.c_uint64), ("at_unix_nanos", ctypes.c_int64),
        ("incident", ctypes.c_uint64), ("rule", ctypes.c_char_p), ("item", ctypes.c_char_p),
        ("severity", ctypes.c_char_p), ("route", ctypes.c_char_p), ("channel", ctypes.c_char_p),
        ("action", ctypes.c_char_p), ("detail", ctypes.c_char_p), ("json", ctypes.c_char_p),
    ]


_DELIVER = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_Alert), ctypes.c_void_p, ctypes.c_size_t
)
_ON_EVENT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(_Event))
_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

_status = ctypes.c_int
_p = ctypes.c_void_p
_str = ctypes.c_char_p
_labels = ctypes.POINTER(_Label)


def _fn(name: str, restype: Any, *argtypes: Any) -> Any:
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_last_error = _fn("vigilo_last_error", _str)
_status_name = _fn("vigilo_status_name", _str, ctypes.c_int)
_version = _fn("vigilo_version", _str)
_string_free = _fn("vigilo_string_free", None, _p)
_monitor_new = _fn("vigilo_monitor_new", _status, _str, ctypes.c_size_t, _str, ctypes.POINTER(_p))
_monitor_new_from_file = _fn("vigilo_monitor_new_from_file", _status, _str, ctypes.POINTER(_p))
_monitor_add_channel = _fn("vigilo_monitor_add_channel", _status, _p, _str, _DELIVER, _p, _FREE)
_monitor_on_event = _fn("vigilo_monitor_on_event", _status, _p, _ON_EVENT, _p, _FREE)
_monitor_start = _fn("vigilo_monitor_start", _status, _p)
_monitor_stop = _fn("vigilo_monitor_stop", _status, _p, ctypes.c_uint64)
_monitor_free = _fn("vigilo_monitor_free", _status, _p)
_monitor_settle = _fn("vigilo_monitor_settle", _status, _p, ctypes.c_uint64)
_handle_args = (_p, _str, _labels, ctypes.c_size_t, ctypes.POINTER(_p))
_monitor_counter = _fn("vigilo_monitor_counter", _status, *_handle_args)
_monitor_gauge = _fn("vigilo_monitor_gauge", _status, *_handle_args)
_monitor_histogram = _fn("vigilo_monitor_histogram", _status, *_handle_args)
_counter_add = _fn("vigilo_counter_add", None, _p, ctypes.c_uint64)
_counter_value = _fn("vigilo_counter_value", ctypes.c_uint64, _p)
_counter_free = _fn("vigilo_counter_free", None, _p)
_gauge_set = _fn("vigilo_gauge_set", None, _p, ctypes.c_double)
_gauge_add = _fn("vigilo_gauge_add", None, _p, ctypes.c_double)
_gauge_value = _fn("vigilo_gauge_value", ctypes.c_double, _p)
_gauge_free = _fn("vigilo_gauge_free", None, _p)
_histogram_record = _fn("vigilo_histogram_record", None, _p, ctypes.c_double)
_histogram_count = _fn("vigilo_histogram_count", ctypes.c_uint64, _p)
_histogram_free = _fn("vigilo_histogram_free", None, _p)
_by_name = (_p, _str, _labels, ctypes.c_size_t)
_monitor_add_counter = _fn("vigilo_monitor_add_counter", _status, *_by_name, ctypes.c_uint64)
_monitor_set_gauge = _fn("vigilo_monitor_set_gauge", _status, *_by_name, ctypes.c_double)
_monitor_record_histogram = _fn(
    "vigilo_monitor_record_histogram", _status, *_by_name, ctypes.c_double
)
_json_out = (_p, ctypes.POINTER(ctypes.c_void_p))
_monitor_status_json = _fn("vigilo_monitor_status_json", _status, *_json_out)
_monitor_http_address = _fn("vigilo_monitor_http_address", _status, *_json_out)
_monitor_coverage_json = _fn("vigilo_monitor_coverage_json", _status, *_json_out)
_monitor_incidents_json = _fn("vigilo_monitor_incidents_json", _status, *_json_out)
_monitor_history_json = _fn(
    "vigilo_monitor_history_json", _status, _p, ctypes.c_uint64, _str, ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_void_p),
)
_monitor_ack = _fn(
    "vigilo_monitor_ack", _status, _p, ctypes.c_uint64, _str, _str, ctypes.c_uint64, ctypes.c_int
)
_monitor_unack = _fn("vigilo_monitor_unack", _status, _p, ctypes.c_uint64)
_monitor_silence = _fn(
    "vigilo_monitor_silence", _status, _p, _str, _labels, ctypes.c_size_t, ctypes.c_uint64, _str,
    _str, ctypes.POINTER(ctypes.c_uint64),
)
_monitor_expire_silence = _fn("vigilo_monitor_expire_silence", _status, _p, ctypes.c_uint64)

_DELIVERED, _RETRYABLE, _PERMANENT = 0, 1, 2
_STATE, _STALE_HANDLE, _MONITOR = 6, 7, 9


def library_version() -> str:
    """The version of the loaded C library."""
    return _version().decode()


# --------------------------------------------------------------------------- errors


class VigiloError(Exception):
    """A call of the C API failed: ``status`` is its code, the message the library's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ConfigError(VigiloError):
    """The configuration was refused; the message locates the problem (name:line:column)."""


class StateError(VigiloError):
    """The call does not fit the monitor's state (not started, stopped, closed …)."""


class NotFoundError(VigiloError):
    """No incident or silence with that id."""


_ERRORS = {4: ConfigError, 5: ConfigError, 6: StateError, 7: StateError, 8: NotFoundError}


def _check(status: int) -> None:
    if status != 0:
        message = (_last_error() or b"").decode("utf-8", "replace")
        raise _ERRORS.get(status, VigiloError)(status, message)


def status_name(status: int) -> str:
    """The library's short name of a status code (``"unknown status"`` for any other value)."""
    return (_status_name(status) or b"").decode()


def _encode(s: str) -> bytes:
    if "\0" in s:
        raise ValueError("a string given to vigilo cannot contain NUL")
    return s.encode("utf-8")


def _labels_arg(labels: Optional[Mapping[str, str]]) -> Any:
    items = list((labels or {}).items())
    array = (_Label * len(items))(*[_Label(_encode(k), _encode(str(v))) for k, v in items])
    return array, len(items)


def _take_json(call: Callable[[Any], int]) -> Any:
    out = ctypes.c_void_p()
    _check(call(ctypes.byref(out)))
    try:
        return json.loads(ctypes.string_at(out.value).decode())
    finally:
        _string_free(out)


# --------------------------------------------------------------------------- values


class Retry(Exception):
    """Raise from a channel: the delivery failed for now and is retried with backoff."""


class Permanent(Exception):
    """Raise from a channel: the delivery will never succeed and is not retried."""


@dataclass
class Alert:
    """An alert as a channel receives it (the fields of ``vigilo::alert::Alert``)."""

    rule: str
    metric: str
    severity: str
    previous: str
    peak: str
    status: str
    value: Optional[float]
    threshold: Optional[float]
    labels: Dict[str, str]
    annotations: Dict[str, str]
    recipients: List[str]
    incident: Optional[int]
    idempotency_key: str
    fingerprint: str
    raw: Dict[str, Any] = field(repr=False)

    @classmethod
    def _from_c(cls, a: Any) -> "Alert":
        raw = json.loads(a.json.decode())
        return cls(
            rule=raw["rule"], metric=raw["metric"], severity=raw["severity"],
            previous=raw["previous"], peak=raw.get("peak", raw["severity"]), status=raw["status"],
            value=raw.get("value"),
            threshold=raw.get("threshold"), labels=raw.get("labels", {}),
            annotations=raw.get("annotations", {}), recipients=raw.get("recipients", []),
            incident=raw.get("incident"), idempotency_key=raw["idempotency_key"],
            fingerprint=raw.get("fingerprint", ""), raw=raw,
        )


@dataclass
class Event:
    """What the pipeline decided or observed: ``kind`` is ``"transition"``, ``"delivered"``,
    ``"failed"``, ``"action_finished"`` …; fields that do not apply are ``None``."""

    kind: str
    seq: int
    incident: Optional[int]
    rule: Optional[str]
    item: Optional[str]
    severity: Optional[str]
    route: Optional[str]
    channel: Optional[str]
    action: Optional[str]
    detail: str
    raw: Dict[str, Any] = field(repr=False)

    @classmethod
    def _from_c(cls, e: Any) -> "Event":
        def s(b: Optional[bytes]) -> Optional[str]:
            return None if b is None else b.decode("utf-8", "replace")

        return cls(
            kind=s(e.kind) or "", seq=e.seq, incident=e.incident or None, rule=s(e.rule),
            item=s(e.item), severity=s(e.severity), route=s(e.route), channel=s(e.channel),
            action=s(e.action), detail=s(e.detail) or "", raw=json.loads(e.json.decode()),
        )


# --------------------------------------------------------------------------- handles


class _Handle:
    _free: Callable[[Any], None]

    def __init__(self, ptr: ctypes.c_void_p, name: str) -> None:
        self._ptr = ptr
        self.name = name

    def close(self) -> None:
        """Frees the handle (the series stays); later calls do nothing."""
        ptr, self._ptr = self._ptr, ctypes.c_void_p()
        if ptr:
            type(self)._free(ptr)

    def __del__(self) -> None:
        self.close()


class Counter(_Handle):
    """A counter series: ``add`` is lock-free and safe from any thread."""

    _free = staticmethod(_counter_free)

    def add(self, n: int = 1) -> None:
        _counter_add(self._ptr, n)

    @property
    def value(self) -> int:
        return int(_counter_value(self._ptr))


class Gauge(_Handle):
    """A gauge series; a NaN or infinity given to ``set`` or ``add`` is dropped and counted."""

    _free = staticmethod(_gauge_free)

    def set(self, value: float) -> None:
        _gauge_set(self._ptr, value)

    def add(self, delta: float) -> None:
        _gauge_add(self._ptr, delta)

    @property
    def value(self) -> float:
        return float(_gauge_value(self._ptr))


class Histogram(_Handle):
    """A histogram series (latencies in seconds, sizes …)."""

    _free = staticmethod(_histogram_free)

    def record(self, value: float) -> None:
        _histogram_record(self._ptr, value)

    @property
    def count(self) -> int:
        return int(_histogram_count(self._ptr))


# --------------------------------------------------------------------------- the monitor

ChannelFn = Callable[[Alert], Any]
EventFn = Callable[[Event], Any]

# The monitors not closed yet (closed at exit), the C callbacks of monitors whose close was
# refused when they were collected (kept alive, and their monitors closed at exit), and whether
# the exit handler has run (a callback after that is skipped).
_open: "weakref.WeakSet[Monitor]" = weakref.WeakSet()
_orphans: List[Any] = []
_exiting = False
# Per thread: the monitors (by id) whose callback this thread is running now.
_inside = threading.local()


class _InCallback:
    """Marks the thread as running a callback of one monitor while the block runs."""

    def __init__(self, key: int) -> None:
        self.key = key

    def __enter__(self) -> None:
        stack = getattr(_inside, "keys", None)
        if stack is None:
            stack = _inside.keys = []
        stack.append(self.key)

    def __exit__(self, *exc: Any) -> None:
        _inside.keys.pop()


def _close_at_exit() -> None:
    """Closes the monitors still open, while the interpreter can still run their callbacks."""
    global _exiting
    for m in list(_open):
        try:
            m.close()
        except Exception:  # noqa: BLE001 (nothing to report to at exit)
            pass
    while _orphans:
        ptr, _callbacks = _orphans.pop()
        _monitor_free(ptr)
    _exiting = True


atexit.register(_close_at_exit)


class Monitor:
    """A monitor from TOML: rules, host items, channels, routes, actions.

    ``channels`` maps the names of configured channels without ``plugin`` or ``path`` to
    Python callables receiving an :class:`Alert`; return to deliver, raise :class:`Retry` or
    :class:`Permanent` (any other exception counts as :class:`Retry`). ``on_event`` receives
    every :class:`Event`. Use as a context manager (starts, then closes), or call
    :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        toml: str = "",
        *,
        name: str = "<config>",
        channels: Optional[Mapping[str, ChannelFn]] = None,
        on_event: Optional[EventFn] = None,
        _handle: Optional[ctypes.c_void_p] = None,
    ) -> None:
        # Set first: `close` (and so `__del__`) must work even if this constructor fails.
        self._ptr = ctypes.c_void_p()
        # The C callbacks must stay alive while the library may call them.
        self._callbacks: List[Any] = []
        # Guards `_ptr` and `_closing` (a close under way on some thread).
        self._cond = threading.Condition()
        self._closing = False
        if _handle is None:
            text = _encode(toml)
            handle = ctypes.c_void_p()
            _check(_monitor_new(text, len(text), _encode(name), ctypes.byref(handle)))
            _handle = handle
        self._ptr: ctypes.c_void_p = _handle
        _open.add(self)
        for channel, fn in (channels or {}).items():
            self.add_channel(channel, fn)
        if on_event is not None:
            self.on_event(on_event)

    @classmethod
    def from_file(cls, path: str, **kwargs: Any) -> "Monitor":
        """A monitor from the TOML file at ``path``."""
        handle = ctypes.c_void_p()
        _check(_monitor_new_from_file(_encode(str(path)), ctypes.byref(handle)))
        return cls(_handle=handle, **kwargs)

    def add_channel(self, name: str, deliver: ChannelFn) -> None:
        """Implements configured channel ``name`` with ``deliver`` (before :meth:`start`)."""

        def call(_user: Any, alert: Any, message: Any, capacity: int) -> int:
            try:
                if _exiting:
                    raise Retry("the interpreter is exiting")
                with _InCallback(id(self)):
                    deliver(Alert._from_c(alert.contents))
                return _DELIVERED
            except Permanent as e:
                code, text = _PERMANENT, str(e) or "permanent failure"
            except BaseException as e:  # noqa: BLE001 (any failure of user code is a retry)
                code, text = _RETRYABLE, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            data = text.encode("utf-8", "replace")[: max(capacity - 1, 0)]
            ctypes.memmove(message, data + b"\0", len(data) + 1)
            return code

        c_call = _DELIVER(call)
        _check(_monitor_add_channel(self._ptr, _encode(name), c_call, None, _FREE()))
        self._callbacks.append(c_call)

    def on_event(self, callback: EventFn) -> None:
        """Calls ``callback`` with every event, in order, on a thread of its own."""

        def call(_user: Any, event: Any) -> None:
            if _exiting:
                return
            try:
                with _InCallback(id(self)):
                    callback(Event._from_c(event.contents))
            except BaseException:  # noqa: BLE001 (a callback's error must not reach C)
                import traceback

                traceback.print_exc()

        c_call = _ON_EVENT(call)
        _check(_monitor_on_event(self._ptr, c_call, None, _FREE()))
        self._callbacks.append(c_call)

    def start(self) -> "Monitor":
        """Loads the plugins and starts the host collector, evaluator and pipeline."""
        _check(_monitor_start(self._ptr))
        return self

    def stop(self, deadline: float = 5.0) -> None:
        """Stops it, giving deliveries up to ``deadline`` seconds to finish; a callback still
        running then is waited for (as long as it takes). When it returns, none of the
        monitor's callbacks runs or will run again. Refused (:class:`StateError`) from inside
        one of its own callbacks."""
        _check(_monitor_stop(self._live(), max(0, int(deadline * 1000))))

    def _inside_own_callback(self) -> bool:
        return id(self) in getattr(_inside, "keys", ())

    def close(self) -> None:
        """Stops it if running (deliveries get 5 seconds) and frees it, once none of its
        callbacks runs or can run again: a callback running is waited for, as long as it takes,
        and so is a close under way on another thread. Later calls raise
        :class:`StateError`; closing again does nothing.

        From inside one of this monitor's own callbacks it is refused with
        :class:`StateError` (it would wait for itself) and the monitor stays as it was.
        """
        if self._inside_own_callback():
            raise StateError(
                _STATE,
                "a monitor cannot be closed from inside its own callback: return first",
            )
        with self._cond:
            while self._closing:
                self._cond.wait()
            ptr = self._ptr
            if not ptr:
                return
            self._closing = True
        status = _STATE
        try:
            status = _monitor_free(ptr)
        finally:
            with self._cond:
                self._closing = False
                # Freed (a stop that reported a problem frees too), or already gone.
                if status in (0, _MONITOR, _STALE_HANDLE):
                    self._ptr = ctypes.c_void_p()
                    _open.discard(self)
                self._cond.notify_all()
        _check(status)

    def __enter__(self) -> "Monitor":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except StateError:
            # Collected inside one of its own callbacks: the library may still call them, so
            # they stay alive, and the monitor is closed at exit.
            if getattr(self, "_ptr", None):
                _orphans.append((self._ptr, self._callbacks))
        except (VigiloError, AttributeError):
            pass

    def _live(self) -> ctypes.c_void_p:
        if not self._ptr:
            raise StateError(6, "the monitor is closed")
        return self._ptr

    # metrics -------------------------------------------------------------------

    def _handle(self, make: Any, cls: Any, name: str, labels: Optional[Mapping[str, str]]) -> Any:
        array, n = _labels_arg(labels)
        out = ctypes.c_void_p()
        _check(make(self._live(), _encode(name), array, n, ctypes.byref(out)))
        return cls(out, name)

    def counter(self, name: str, labels: Optional[Mapping[str, str]] = None) -> Counter:
        """The counter ``name{labels}``, created if new."""
        return self._handle(_monitor_counter, Counter, name, labels)

    def gauge(self, name: str, labels: Optional[Mapping[str, str]] = None) -> Gauge:
        """The gauge ``name{labels}``, created if new."""
        return self._handle(_monitor_gauge, Gauge, name, labels)

    def histogram(self, name: str, labels: Optional[Mapping[str, str]] = None) -> Histogram:
        """The histogram ``name{labels}``, created if new."""
        return self._handle(_monitor_histogram, Histogram, name, labels)

    def add_counter(self, name: str, n: int = 1, labels: Optional[Mapping[str, str]] = None) -> None:
        """Adds ``n`` to counter ``name{labels}`` without a handle."""
        array, count = _labels_arg(labels)
        _check(_monitor_add_counter(self._live(), _encode(name), array, count, n))

    def set_gauge(self, name: str, value: float, labels: Optional[Mapping[str, str]] = None) -> None:
        """Sets gauge ``name{labels}`` without a handle (NaN raises)."""
        array, count = _labels_arg(labels)
        _check(_monitor_set_gauge(self._live(), _encode(name), array, count, value))

    def record_histogram(
        self, name: str, value: float, labels: Optional[Mapping[str, str]] = None
    ) -> None:
        """Records into histogram ``name{labels}`` without a handle (NaN raises)."""
        array, count = _labels_arg(labels)
        _check(_monitor_record_histogram(self._live(), _encode(name), array, count, value))

    # the running monitor ------------------------------------------------------

    def settle(self, timeout: float = 5.0) -> None:
        """Waits until every transition and delivery so far was handled."""
        _check(_monitor_settle(self._live(), int(timeout * 1000)))

    def status(self) -> Dict[str, Any]:
        """The status board: items, incidents, silences, coverage, pipeline counters."""
        return _take_json(lambda out: _monitor_status_json(self._live(), out))

    def http_address(self) -> str:
        """Where the ``[http]`` endpoint (``/metrics``, the board at ``/``) listens, ``host:port``.

        Raises NotFoundError if the configuration has no ``[http]`` section.
        """
        out = ctypes.c_void_p()
        _check(_monitor_http_address(self._live(), ctypes.byref(out)))
        try:
            return ctypes.string_at(out.value).decode()
        finally:
            _string_free(out)

    def coverage(self) -> Dict[str, Any]:
        """The coverage report."""
        return _take_json(lambda out: _monitor_coverage_json(self._live(), out))

    def incidents(self) -> List[Dict[str, Any]]:
        """The open incidents, oldest first."""
        return _take_json(lambda out: _monitor_incidents_json(self._live(), out))

    def history(
        self, incident: Optional[int] = None, rule: Optional[str] = None, limit: int = 100
    ) -> List[Dict[str, Any]]:
        """The latest ``limit`` events, optionally of one incident or rule."""
        r = None if rule is None else _encode(rule)
        return _take_json(
            lambda out: _monitor_history_json(self._live(), incident or 0, r, limit, out)
        )

    def ack(
        self, incident: int, by: str, comment: str = "", expires_after: Optional[float] = None,
        sticky: bool = False,
    ) -> None:
        """Acknowledges an open incident."""
        ms = 0 if expires_after is None else max(1, int(expires_after * 1000))
        _check(_monitor_ack(self._live(), incident, _encode(by), _encode(comment), ms,
                            1 if sticky else 0))

    def unack(self, incident: int) -> None:
        """Removes an incident's acknowledgement."""
        _check(_monitor_unack(self._live(), incident))

    def silence(
        self, by: str, duration: float, rule: Optional[str] = None,
        matchers: Optional[Mapping[str, str]] = None, comment: str = "",
    ) -> int:
        """Silences matching alerts from now for ``duration`` seconds; returns the id."""
        array, n = _labels_arg(matchers)
        out = ctypes.c_uint64()
        r = None if rule is None else _encode(rule)
        _check(_monitor_silence(self._live(), r, array, n, int(duration * 1000), _encode(by),
                                _encode(comment), ctypes.byref(out)))
        return int(out.value)

    def expire_silence(self, silence: int) -> None:
        """Ends a silence now."""
        _check(_monitor_expire_silence(self._live(), silence))
