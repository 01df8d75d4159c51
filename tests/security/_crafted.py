"""Crafted pickles for the safe-loading tests: each one, if anything executed it, would create the
marker file. Every payload is built here from Python's own pickle opcodes; nothing is fetched."""
from __future__ import annotations

import os
import pickle
import struct
from collections import OrderedDict

import numpy as np


class _Reduce:
    """An object whose pickle calls ``fn(*args)`` on load (the classic pickle exploit)."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _write_marker_code(marker) -> str:
    return f"open({str(marker)!r}, 'w').write('pwned')"


def _str0(s: str) -> bytes:  # protocol-0 string literal
    return repr(s).encode()


def _short_binunicode(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


NOT_RUN_BY_PICKLE = {"eval_data_with_builtins", "persistent_id", "codecs_encode_other_codec",
                     "numpy_reconstruct_subclass", "copyreg_reconstructor"}


def payloads(marker) -> dict:
    """name -> pickle bytes. Each tries to create ``marker``; those in NOT_RUN_BY_PICKLE are
    argument-level abuses of allowed names (plain pickle does not run code for them either)."""
    code = _write_marker_code(marker)
    touch = f"touch {marker}"
    tiny_state = OrderedDict(w=np.ones((2, 2), np.float32))
    out = {}
    out["exec_top_level"] = pickle.dumps(_Reduce(exec, (code,)), protocol=4)
    out["os_system"] = pickle.dumps(_Reduce(os.system, (touch,)), protocol=4)
    out["eval_expression"] = pickle.dumps(_Reduce(eval, (code,)), protocol=4)
    # eval('data', {...}) is what paddle writes for a DenseTensor; an env with more keys is refused
    out["eval_data_with_builtins"] = pickle.dumps(
        _Reduce(eval, ("data", {"data": np.zeros(1), "__builtins__": {}})), protocol=4)
    # a real-looking state dict with one poisoned entry (the file still "works" for paddle.load)
    poisoned = OrderedDict(tiny_state)
    poisoned["zz_extra"] = _Reduce(exec, (code,))
    out["state_dict_with_poisoned_value"] = pickle.dumps(poisoned, protocol=4)
    # checkpoint layout with the payload deep inside the optimizer state
    out["checkpoint_poisoned_optimizer"] = pickle.dumps(
        {"model": dict(tiny_state), "optimizer": {"m": [_Reduce(exec, (code,))]}, "epoch": 1}, protocol=2)
    # object-dtype numpy array whose element is the payload
    obj_arr = np.empty(1, dtype=object)
    obj_arr[0] = _Reduce(exec, (code,))
    out["numpy_object_array"] = pickle.dumps({"w": obj_arr}, protocol=4)
    # Python 2 spellings, protocol 0 text opcodes (GLOBAL + REDUCE, INST, OBJ)
    out["py2_builtin_eval_proto0"] = b"c__builtin__\neval\n(S" + _str0(code) + b"\ntR."
    out["posix_system_proto0"] = b"cposix\nsystem\n(S" + _str0(touch) + b"\ntR."
    out["inst_opcode"] = b"(S" + _str0(touch) + b"\nios\nsystem\n."
    out["obj_opcode"] = b"\x80\x02(cos\nsystem\nS" + _str0(touch) + b"\no."
    # STACK_GLOBAL (protocol 4) naming subprocess.Popen via the memo
    out["stack_global_subprocess"] = (b"\x80\x04" + _short_binunicode("subprocess") + b"\x94"
                                      + _short_binunicode("getoutput") + b"\x94\x93"
                                      + _short_binunicode(touch) + b"\x85R.")
    # persistent id (torch-style); a loader without persistent_load must refuse, not call anything
    out["persistent_id"] = b"\x80\x02" + _short_binunicode("x") + b"Q."
    # a nested pickle: pickle.loads(b'...exec...')
    inner = pickle.dumps(_Reduce(exec, (code,)), protocol=4)
    out["nested_pickle_loads"] = pickle.dumps(_Reduce(pickle.loads, (inner,)), protocol=4)
    # numpy's own loader with allow_pickle, and a subclass through _reconstruct
    out["numpy_reconstruct_subclass"] = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nmemmap\n"
                                         b"K\x00\x85U\x01b\x87R.")
    # copyreg._reconstructor(cls, base, state) is how protocol 0/1 rebuilds arbitrary classes
    out["copyreg_reconstructor"] = (b"ccopy_reg\n_reconstructor\n(cos\n_wrap_close\nc__builtin__\nobject\nNtR.")
    # a codec other than latin1 through _codecs.encode (allowed name, refused arguments)
    out["codecs_encode_other_codec"] = pickle.dumps(_Reduce(__import__("_codecs").encode, ("x", "rot13")), protocol=4)
    # a dtype whose state claims object fields
    rec = np.zeros(1, dtype=[("a", "O")])
    rec[0] = (_Reduce(exec, (code,)),)
    out["structured_object_dtype"] = pickle.dumps({"w": rec}, protocol=4)
    return out


# ---------------------------------------------------------------------------------------------
def py2_pickle_of_array(arr: np.ndarray, key: str = "w") -> bytes:
    """A Python-2-style protocol-2 pickle of {key: arr} (numpy.core names, BINSTRING data), the way
    2020-era Paddle 1.8/2.0 under Python 2 wrote them. Built opcode by opcode."""
    arr = np.ascontiguousarray(arr)
    code = arr.dtype.str[1:]  # e.g. 'f4'
    order = arr.dtype.str[0]

    def binstring(b: bytes) -> bytes:
        return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)

    def ints(t):
        return b"(" + b"".join(b"J" + struct.pack("<i", d) for d in t) + b"t"

    out = b"\x80\x02}q\x00" + binstring(key.encode())
    out += b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85q\x03" + binstring(b"b") + b"\x87Rq\x04"
    out += b"(K\x01" + ints(arr.shape)
    out += b"cnumpy\ndtype\nq\x05" + binstring(code.encode()) + b"K\x00K\x01\x87Rq\x06"
    out += b"(K\x03" + binstring(order.encode()) + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89" + binstring(arr.tobytes()) + b"tb"
    out += b"s."
    return out
