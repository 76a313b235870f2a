"""Artifacts: round trips of Python values and NumPy arrays, cloudpickle, errors, zero-copy loads."""

from __future__ import annotations

import math
import mmap
import socket
import subprocess
import sys
import textwrap
import threading
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cafstore.exception import ArtifactLoadError, ArtifactSerializationError, StoreError
from cafstore.store import Store, StoreConfig, serialize

FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)


def same(a, b) -> bool:
    """Deep equality that also checks types, treats NaN as equal to NaN and keeps -0.0 apart from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return same_array(a, b)
    return a == b


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.hasobject:
        return all(same(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))
    return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()  # bit-exact, NaNs too


def stores(tmp_path) -> list:
    """Both storage paths: everything inline (default threshold) and everything a file.

    Not durable: these tests are about encodings, and fsync would be most of their time.
    """
    return [
        Store(tmp_path / "default", StoreConfig(durable=False)),
        Store(tmp_path / "files", StoreConfig(inline_threshold=16, durable=False)),
    ]


def round_trip(store: Store, value, **kwargs):
    oid = store.put_artifact(value)
    assert store.put_artifact(value) == oid  # deterministic: the same value, the same id
    assert store.stat(oid).encoding == "artifact"
    return store.get_artifact(oid, verify=True, **kwargs)


hashables = st.integers() | st.text(max_size=8) | st.binary(max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**64, max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=5).map(tuple)
        | st.dictionaries(st.text(max_size=8) | st.integers(), children, max_size=5)
        | st.sets(hashables, max_size=5)
        | st.frozensets(hashables, max_size=5)
    ),
    max_leaves=25,
)


@FIXTURE_OK
@given(value=values)
def test_nested_containers_round_trip(tmp_path, value):
    for store in stores(tmp_path):
        assert same(round_trip(store, value), value)


def test_same_handles_nan_and_types():
    assert same([float("nan"), {"a": (1, b"x")}], [float("nan"), {"a": (1, b"x")}])
    assert not same(0.0, -0.0)
    assert not same((1,), [1])
    assert not same(1, True)


dtypes = st.sampled_from(
    [
        np.bool_,
        np.int8,
        np.uint16,
        np.int32,
        np.int64,
        np.float16,
        np.float32,
        np.float64,
        np.complex64,
        np.complex128,
        np.dtype(">i4"),
        np.dtype("<U3"),
        np.dtype("S4"),
        np.dtype("datetime64[s]"),
        np.dtype("timedelta64[ms]"),
    ]
)
arrays = hnp.arrays(dtype=dtypes, shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
layouts = st.sampled_from(["C", "F", "strided", "transposed", "reversed"])


def relayout(arr: np.ndarray, layout: str) -> np.ndarray:
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "strided" and arr.ndim:
        return arr[::2]
    if layout == "transposed":
        return arr.T
    if layout == "reversed" and arr.ndim:
        return arr[::-1]
    return arr


@FIXTURE_OK
@given(arr=arrays, layout=layouts)
def test_numpy_arrays_round_trip(tmp_path, arr, layout):
    arr = relayout(arr, layout)
    for store in stores(tmp_path):
        out = round_trip(store, arr)
        if out.dtype != arr.dtype and not (arr.flags.c_contiguous or arr.flags.f_contiguous):
            # NumPy's own pickling of a non-contiguous array yields native byte order (pickle.loads
            # of pickle.dumps does the same): same values, so compare them in the original dtype.
            assert out.dtype == arr.dtype.newbyteorder("=")
            out = out.astype(arr.dtype)
        assert same_array(out, arr)
        if arr.flags.f_contiguous and not arr.flags.c_contiguous:
            assert out.flags.f_contiguous  # Fortran order survives


def test_special_arrays_round_trip(tmp_path):
    structured = np.zeros(5, dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")])
    structured["a"] = np.arange(5)
    structured["b"] = np.linspace(0, 1, 10).reshape(5, 2)
    structured["c"] = [b"x", b"yy", b"zzz", b"", b"w"]
    specials = {
        "zero_d": np.array(3.5),
        "zero_d_int": np.array(7, dtype=np.uint8),
        "empty": np.zeros((0, 3)),
        "empty_f": np.zeros((4, 0), order="F"),
        "fortran": np.asfortranarray(np.arange(24.0).reshape(2, 3, 4)),
        "strided": np.arange(100)[::7],
        "structured": structured,
        "objects": np.array([1, "a", None, [1, 2], {"k": 1.5}], dtype=object),
        "nan": np.array([np.nan, -np.nan, np.inf, -0.0]),
        "big_endian": np.arange(10, dtype=">f8"),
        "matrix_view": np.arange(36).reshape(6, 6)[1:5, 2:4],
    }
    for store in stores(tmp_path):
        out = round_trip(store, specials)
        assert list(out) == list(specials)
        for key, arr in specials.items():
            assert same_array(out[key], arr), key


def test_shared_references_are_preserved(tmp_path):
    arr = np.arange(1000.0)
    value = {"a": arr, "b": [arr, arr], "c": arr[10:20]}
    for store in stores(tmp_path):
        out = round_trip(store, value)
        assert out["b"][0] is out["b"][1] is out["a"]
        assert same_array(out["c"], arr[10:20])


def test_value_over_64_mib(tmp_path):
    """One large value through a whole-file store and a chunking one."""
    arr = np.arange((64 << 20) // 8 + 4096, dtype=np.float64)
    arr *= 1.5
    assert arr.nbytes > 64 << 20
    for store in (
        Store(tmp_path / "whole", StoreConfig(chunk_threshold=0)),
        Store(tmp_path / "chunked", StoreConfig(chunk_threshold=1 << 20, chunk_similar_only=False)),
    ):
        oid = store.put_artifact({"big": arr, "tag": "x"})
        assert store.stat(oid).size > arr.nbytes
        out = store.get_artifact(oid, verify=True)
        assert out["tag"] == "x"
        assert np.array_equal(out["big"], arr)
        del out
        assert store.put_artifact({"big": arr, "tag": "x"}) == oid
        assert store.fsck().ok


def test_large_bytes_are_stored_raw(store):
    head = serialize._HEAD.size
    for size in (serialize._RAW_BYTES_MIN, 200_000):
        data = bytes(range(256)) * (size // 256) + b"!" * (size % 256)
        oid = store.put_artifact(data)
        stored = store.get_bytes(oid)
        assert stored[:4] == serialize.MAGIC and stored[5] == serialize.KIND_RAW_BYTES
        assert len(stored) == head + size and stored[head:] == data
        out = store.get_artifact(oid, verify=True)
        assert type(out) is bytes and out == data
    # Just under the limit, or another type: pickled as usual.
    smaller = b"s" * (serialize._RAW_BYTES_MIN - 1)
    assert store.get_bytes(store.put_artifact(smaller))[5] == serialize.KIND_PICKLE
    for value in (bytearray(b"b" * 100_000), memoryview(b"m" * 100_000).tobytes()[:10]):
        assert same(round_trip(store, value), value)


def test_bytes_subclass_is_not_stored_raw(store):
    class Tagged(bytes):
        pass

    # Not a top-level-bytes fast path candidate: its type must survive (local class -> cloudpickle).
    value = Tagged(b"t" * 100_000)
    out = round_trip(store, value)
    assert type(out).__name__ == "Tagged" and out == value


# -- cloudpickle: lambdas and classes of the flow file (__main__) ------------------------------
MAIN_SOURCE = textwrap.dedent("""
    FACTOR = 3

    class Greeter:
        def __init__(self, who):
            self.who = who

        def greet(self):
            return "hello " + self.who * FACTOR

    def triple(x):
        return x * FACTOR
""")


def main_module_namespace() -> dict:
    """Definitions whose __module__ is '__main__', as in a flow file run as a script."""
    namespace: dict = {"__name__": "__main__"}
    exec(compile(MAIN_SOURCE, "<flow file>", "exec"), namespace)
    assert namespace["Greeter"].__module__ == "__main__"
    return namespace


LOADER = textwrap.dedent("""
    import sys
    from cafstore.store import Store
    store = Store(sys.argv[1])
    for oid in sys.argv[2:]:
        value = store.get_artifact(oid, verify=True)
        print(value["obj"].greet(), value["fn"](2), value["lam"](10), type(value["obj"]).__name__)
""")


def test_main_classes_and_lambdas_load_in_a_fresh_interpreter(tmp_path, monkeypatch):
    store = Store(tmp_path / "store")
    ns = main_module_namespace()

    def value():
        return {"obj": ns["Greeter"]("ab"), "fn": ns["triple"], "lam": lambda x: x + 1}

    # 1. __main__ of this process does not define them: plain pickle fails, cloudpickle stores by value.
    unresolvable = store.put_artifact(value(), name="greeter")
    # 2. __main__ does define them (a flow file run as a script): plain pickle would store a
    #    reference to __main__.Greeter that no other process can resolve; the store must not.
    main = sys.modules["__main__"]
    for name in ("Greeter", "triple"):
        monkeypatch.setattr(main, name, ns[name], raising=False)
    resolvable = store.put_artifact({"obj": ns["Greeter"]("cd"), "fn": ns["triple"], "lam": (lambda x: x - 1)})
    assert resolvable != unresolvable
    out = subprocess.run(
        [sys.executable, "-c", LOADER, str(store.path), unresolvable, resolvable],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["hello ababab 6 11 Greeter", "hello cdcdcd 6 9 Greeter"]


def test_local_functions_and_classes(store):
    def make_adder(n):
        return lambda x: x + n

    class Local:
        def __init__(self):
            self.v = [1, 2]

    out = round_trip(store, {"add": make_adder(5), "obj": Local()})
    assert out["add"](1) == 6 and out["obj"].v == [1, 2]


def test_missing_class_raises_artifact_load_error(store, monkeypatch):
    module = types.ModuleType("cafstore_test_vanishing_module")
    exec("class Thing:\n    pass\n", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    oid = store.put_artifact(module.Thing())
    monkeypatch.delitem(sys.modules, module.__name__)
    with pytest.raises(ArtifactLoadError, match="cafstore_test_vanishing_module") as info:
        store.get_artifact(oid, name="thing")
    assert "thing" in str(info.value)


def test_not_an_artifact(store):
    oid = store.put_bytes(b"this is not an artifact at all")
    with pytest.raises(ArtifactLoadError):
        store.get_artifact(oid)
    with pytest.raises(ArtifactLoadError):
        store.get_artifact(store.put_bytes(b""))


# -- values that cannot be stored --------------------------------------------------------------
def _generator():
    yield 1


@pytest.mark.parametrize(
    "make, type_name",
    [
        (threading.Lock, "lock"),
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), "socket"),
        (_generator, "generator"),
    ],
)
def test_unpicklable_values_name_type_and_artifact(store, make, type_name):
    value = make()
    before = len(list(store.iter_objects()))
    try:
        with pytest.raises(ArtifactSerializationError) as info:
            store.put_artifact(value, name="my_artifact")
        message = str(info.value)
        assert "my_artifact" in message
        assert type_name in message
        assert type(value).__qualname__ in message
        assert isinstance(info.value, StoreError) and isinstance(info.value, TypeError)
        # Nested: the outer type is named, and the reason mentions the culprit.
        with pytest.raises(ArtifactSerializationError, match=rf"(?s)'model'.*dict.*{type_name}"):
            store.put_artifact({"ok": 1, "bad": [value]}, name="model")
    finally:
        if hasattr(value, "close"):
            value.close()
    assert len(list(store.iter_objects())) == before


# -- loaded arrays: writable, private, zero-copy ----------------------------------------------
def array_stores(tmp_path) -> dict:
    return {
        "inline": (Store(tmp_path / "inline"), 1000),
        "file": (Store(tmp_path / "file", StoreConfig(chunk_threshold=0)), 500_000),
        "chunked": (
            Store(
                tmp_path / "chunked",
                StoreConfig(chunk_threshold=1 << 20, chunk_similar_only=False, chunk_size=64 << 10),
            ),
            500_000,
        ),
    }


@pytest.mark.parametrize("kind", ["inline", "file", "chunked"])
def test_loaded_arrays_are_writable_and_private(tmp_path, kind):
    store, n = array_stores(tmp_path)[kind]
    original = np.arange(n, dtype=np.float64)
    oid = store.put_artifact({"x": original})
    assert store.stat(oid).location == kind
    loaded = store.get_artifact(oid)["x"]
    assert loaded.flags.writeable
    loaded[:] = -1.0
    loaded[0] = 42
    again = store.get_artifact(oid, verify=True)["x"]
    assert np.array_equal(again, original)
    assert store.fsck().ok


def backing_object(arr: np.ndarray):
    """Follow an array's base chain (arrays, memoryviews) to the object that owns the memory."""
    obj = arr
    while True:
        if isinstance(obj, np.ndarray) and obj.base is not None:
            obj = obj.base
        elif isinstance(obj, memoryview):
            obj = obj.obj
        else:
            return obj


def test_large_array_loads_zero_copy_from_mmap(tmp_path):
    store = Store(tmp_path / "whole", StoreConfig(chunk_threshold=0))
    arr = np.arange(4 << 20, dtype=np.float64)
    oid = store.put_artifact(arr)
    loaded = store.get_artifact(oid)
    # The array's memory is a (copy-on-write) mapping of the object file, not a copy of it.
    assert isinstance(backing_object(loaded), mmap.mmap)
    assert np.array_equal(loaded, arr)
    # The buffer starts 64-byte aligned, as a freshly allocated array would.
    assert loaded.ctypes.data % 64 == 0
