"""A jaxpr -> ONNX graph converter for the primitives fluxseg's models use in inference.

Why fluxseg carries its own: jax2onnx 0.13.0 (the newest release that does not
pin orbax-checkpoint below fluxseg's 0.12.8) patches `flax.linen.max_pool`
with a signature that rejects positional windows, lowers `reduce_window_max`
to a MaxPool that onnxruntime rejects ("Unsupported pooling size"), and fails
on `pad` with a symbolic batch; tf2onnx cannot read the `XlaCallModule` op
that jax2tf's native serialization (its only path) writes. Converting the
jaxpr of the serving function directly, primitive by primitive, keeps every
op a plain ONNX op whose numbers can be checked.

Shapes: the input's height, width and batch may be symbolic
(`jax.export.symbolic_shape`); every shape that depends on them (a reshape
target, a broadcast, a slice end, a dimension used as a value) is computed
in the graph from the input's runtime shape, by evaluating jax's dimension
expression with ONNX integer ops (`_Dim`). A dimension variable is read back
from one input axis as ``(size - offset) / step`` and the graph refuses a
size that is not of that form (`size_check`): onnxruntime then fails in a
node whose name states the rule, instead of computing on a wrong shape.

Layout: ONNX convolutions and pools are NCHW; the graph transposes around
each one (onnxruntime fuses adjacent transposes away).
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Optional

import numpy as np

OPSET = 18


class UnsupportedPrimitive(NotImplementedError):
    """A primitive (or a parameter of one) this converter has no ONNX form for."""


def _onnx():
    import onnx
    return onnx


class _Dim:
    """An int64 scalar in the graph, with the integer arithmetic jax's dimension
    expressions are evaluated with (`+ * divmod`, constants on either side)."""

    __array_priority__ = 10_000
    __array_ufunc__ = None  # numpy scalars defer to our reflected operators

    def __init__(self, graph: "Graph", name: str):
        self.graph, self.name = graph, name

    def _other(self, v) -> str:
        return v.name if isinstance(v, _Dim) else self.graph.const(np.array(int(v), np.int64))

    def _op(self, op, a, b) -> "_Dim":
        return _Dim(self.graph, self.graph.node(op, [self._other(a), self._other(b)]))

    def __add__(self, v):
        return self._op("Add", self, v)

    __radd__ = __add__

    def __sub__(self, v):
        return self._op("Sub", self, v)

    def __rsub__(self, v):
        return self._op("Sub", v, self)

    def __mul__(self, v):
        return self._op("Mul", self, v)

    __rmul__ = __mul__

    def __floordiv__(self, v):
        # Dimension expressions divide non-negative sizes: Div's truncation is the floor.
        return self._op("Div", self, v)

    def __mod__(self, v):
        return self._op("Mod", self, v)

    def __divmod__(self, v):
        return self // v, self % v

    def __index__(self):  # jax asks op.index(v) to skip adding 0 / multiplying by 1
        raise TypeError("a runtime dimension has no constant value")


class Graph:
    """ONNX nodes, initializers and unique names for one conversion."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self._ids = itertools.count()
        self._consts: dict = {}
        self.values: dict = {}  # name -> numpy value, for the constants
        self._stored: set = set()  # constants that a node reads: the initializers

    def fresh(self, hint: str = "t") -> str:
        return f"{hint}_{next(self._ids)}"

    def node(self, op: str, inputs: list[str], n_out: int = 1, name: Optional[str] = None, **attrs):
        onnx = _onnx()
        for i in inputs:  # constants become initializers only once a node reads them
            if i in self.values and i not in self._stored:
                self._stored.add(i)
                arr = np.array(self.values[i], order="C")  # (ascontiguousarray makes scalars 1-D)
                self.initializers.append(onnx.numpy_helper.from_array(arr, i))
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(onnx.helper.make_node(op, inputs, outs, name=name or self.fresh("n_" + op),
                                                **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value) -> str:
        arr = np.asarray(value)
        name = self._const_name(arr)
        self.values[name] = arr
        return name

    def _const_name(self, arr: np.ndarray) -> str:
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 16 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh("c")
        if key is not None:
            self._consts[key] = name
        return name

    def shape_tensor(self, dims, env) -> str:
        """int64 [len(dims)]: constant dims as they are, symbolic ones evaluated in the graph."""
        if all(isinstance(d, (int, np.integer)) for d in dims):
            return self.const(np.array([int(d) for d in dims], np.int64))
        parts = [self.unsqueeze(self.dim_value(d, env)) for d in dims]
        return self.node("Concat", parts, axis=0)

    def dim_value(self, d, env) -> str:
        """Name of an int64 scalar holding dimension ``d`` (an int or a jax dimension expression)."""
        if isinstance(d, (int, np.integer)):
            return self.const(np.array(int(d), np.int64))
        v = d._evaluate(env)
        return v.name if isinstance(v, _Dim) else self.const(np.array(int(v), np.int64))

    def unsqueeze(self, scalar: str) -> str:
        return self.node("Unsqueeze", [scalar, self.const(np.array([0], np.int64))])


# ---- the primitives --------------------------------------------------------------------------

def _dtype(dt) -> int:
    onnx = _onnx()
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dt))


_ELEMENTWISE = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "max": "Max", "min": "Min",
                "exp": "Exp", "log": "Log", "neg": "Neg", "sqrt": "Sqrt", "tanh": "Tanh",
                "logistic": "Sigmoid", "abs": "Abs", "floor": "Floor", "ceil": "Ceil",
                "gt": "Greater", "lt": "Less", "ge": "GreaterOrEqual", "le": "LessOrEqual",
                "eq": "Equal", "and": "And", "or": "Or", "not": "Not", "pow": "Pow",
                "sign": "Sign"}
_IDENTITY = ("stop_gradient", "copy", "copy_p", "optimization_barrier", "reduce_precision")
_REDUCE = {"reduce_sum": "ReduceSum", "reduce_max": "ReduceMax", "reduce_min": "ReduceMin"}


def _to_nchw(g, x, rank=4):
    return g.node("Transpose", [x], perm=[0, rank - 1, *range(1, rank - 1)])


def _to_nhwc(g, x, rank=4):
    return g.node("Transpose", [x], perm=[0, *range(2, rank), 1])


def _conv(g, eqn, ins, env):
    p = eqn.params
    if any(d != 1 for d in p["lhs_dilation"]):
        raise UnsupportedPrimitive("conv_general_dilated with lhs_dilation (a transposed convolution "
                                   "in 'dilated' form); use ConvTranspose2D(method='subpixel')")
    if p["batch_group_count"] != 1:
        raise UnsupportedPrimitive("conv_general_dilated with batch_group_count > 1")
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    x, k = ins
    # Bring both operands to ONNX's N C spatial... / O I spatial... order.
    x = g.node("Transpose", [x], perm=list(lhs_spec))
    k = g.node("Transpose", [k], perm=list(rhs_spec))
    pads = [int(lo) for lo, _ in p["padding"]] + [int(hi) for _, hi in p["padding"]]
    if min(pads) < 0:
        raise UnsupportedPrimitive(f"conv_general_dilated with negative padding {p['padding']}")
    y = g.node("Conv", [x, k], strides=[int(s) for s in p["window_strides"]], pads=pads,
               dilations=[int(d) for d in p["rhs_dilation"]], group=int(p["feature_group_count"]))
    # y is in N C spatial order; out_spec says where each lands in the jax result.
    inverse = [0] * len(out_spec)
    for onnx_axis, jax_axis in enumerate(out_spec):
        inverse[jax_axis] = onnx_axis
    return g.node("Transpose", [y], perm=inverse)


def _reduce_window_max(g, eqn, ins, env):
    p = eqn.params
    window, strides, padding = p["window_dimensions"], p["window_strides"], p["padding"]
    rank = len(window)
    if window[0] != 1 or window[-1] != 1 or strides[0] != 1 or strides[-1] != 1:
        raise UnsupportedPrimitive(f"reduce_window_max over the batch or channel axis ({window})")
    if any(d != 1 for d in (*p["base_dilation"], *p["window_dilation"])):
        raise UnsupportedPrimitive("reduce_window_max with dilation")
    if padding[0] != (0, 0) or padding[-1] != (0, 0):
        raise UnsupportedPrimitive("reduce_window_max padded on the batch or channel axis")
    # MaxPool's padding never wins a maximum: the -inf padding of lax.reduce_window.
    inner = padding[1:-1]
    y = g.node("MaxPool", [_to_nchw(g, ins[0], rank)], kernel_shape=[int(w) for w in window[1:-1]],
               strides=[int(s) for s in strides[1:-1]],
               pads=[int(lo) for lo, _ in inner] + [int(hi) for _, hi in inner])
    return _to_nhwc(g, y, rank)


def _dot_general(g, eqn, ins, env):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    a, b = eqn.invars
    ra, rb_ = len(a.aval.shape), len(b.aval.shape)
    if not lb and not rb and list(lc) == [ra - 1] and list(rc) == [0] and rb_ == 2:
        y = g.node("MatMul", ins)  # x [..., F] @ W [F, K]: a Dense layer
    else:
        letters = iter("abcdefghijklmnopqrstuvwxyz")
        la = [next(letters) for _ in range(ra)]
        lb_letters = [None] * rb_
        for i, j in zip(lc, rc):
            lb_letters[j] = la[i]
        for i, j in zip(lb, rb):
            lb_letters[j] = la[i]
        lb_letters = [c or next(letters) for c in lb_letters]
        batch = [la[i] for i in lb]
        free_a = [c for i, c in enumerate(la) if i not in lc and i not in lb]
        free_b = [c for j, c in enumerate(lb_letters) if j not in rc and j not in rb]
        eq = f"{''.join(la)},{''.join(lb_letters)}->{''.join(batch + free_a + free_b)}"
        y = g.node("Einsum", ins, equation=eq)
    out_dtype = eqn.outvars[0].aval.dtype
    if np.dtype(out_dtype) != np.dtype(a.aval.dtype):
        y = g.node("Cast", [y], to=_dtype(out_dtype))
    return y


def _broadcast_in_dim(g, eqn, ins, env):
    p = eqn.params
    shape, dims = p["shape"], p["broadcast_dimensions"]
    x = ins[0]
    missing = [i for i in range(len(shape)) if i not in dims]
    if missing:
        x = g.node("Unsqueeze", [x, g.const(np.array(missing, np.int64))])
    return g.node("Expand", [x, g.shape_tensor(shape, env)])


def _reshape(g, eqn, ins, env):
    if eqn.params.get("dimensions") is not None:
        raise UnsupportedPrimitive("reshape with dimensions (a transposing reshape)")
    # allowzero: a 0 in the shape means zero (jax's meaning), not "copy that axis" (ONNX's default)
    return g.node("Reshape", [ins[0], g.shape_tensor(eqn.params["new_sizes"], env)], allowzero=1)


def _slice(g, eqn, ins, env):
    p = eqn.params
    n = len(p["start_indices"])
    strides = p["strides"] or (1,) * n
    return g.node("Slice", [ins[0], g.shape_tensor(p["start_indices"], env),
                            g.shape_tensor(p["limit_indices"], env),
                            g.const(np.arange(n, dtype=np.int64)), g.shape_tensor(strides, env)])


def _pad(g, eqn, ins, env):
    config = eqn.params["padding_config"]
    if any(interior for _, _, interior in config):
        raise UnsupportedPrimitive("pad with interior padding")
    lo = [c[0] for c in config]
    hi = [c[1] for c in config]
    if any(isinstance(v, (int, np.integer)) and v < 0 for v in lo + hi):
        raise UnsupportedPrimitive(f"pad with negative padding {config}")
    return g.node("Pad", [ins[0], g.shape_tensor(lo + hi, env), ins[1]], mode="constant")


def _argmax(g, eqn, ins, env):
    (axis,) = eqn.params["axes"]
    # jnp.argmax takes the first of tied maxima, as select_last_index=0 does.
    y = g.node("ArgMax", ins, axis=int(axis), keepdims=0, select_last_index=0)
    return g.node("Cast", [y], to=_dtype(eqn.params["index_dtype"]))


def _reduce(g, eqn, ins, env):
    axes = g.const(np.array(eqn.params["axes"], np.int64))
    return g.node(_REDUCE[eqn.primitive.name], [ins[0], axes], keepdims=0)


def _integer_pow(g, eqn, ins, env):
    y = int(eqn.params["y"])
    if y == 2:
        return g.node("Mul", [ins[0], ins[0]])
    exponent = g.const(np.array(y, np.dtype(eqn.invars[0].aval.dtype)))
    return g.node("Pow", [ins[0], exponent])


def _select_n(g, eqn, ins, env):
    if len(ins) != 3:
        raise UnsupportedPrimitive("select_n with more than two cases")
    pred, false_case, true_case = ins
    if np.dtype(eqn.invars[0].aval.dtype) != np.bool_:
        pred = g.node("Cast", [pred], to=_dtype(np.bool_))
    return g.node("Where", [pred, true_case, false_case])


def _convert(g, eqn, ins, env):
    return g.node("Cast", ins, to=_dtype(eqn.params["new_dtype"]))


def _rsqrt(g, eqn, ins, env):
    return g.node("Reciprocal", [g.node("Sqrt", ins)])


def _square(g, eqn, ins, env):
    return g.node("Mul", [ins[0], ins[0]])


def _concatenate(g, eqn, ins, env):
    return g.node("Concat", ins, axis=int(eqn.params["dimension"]))


def _transpose(g, eqn, ins, env):
    return g.node("Transpose", ins, perm=[int(a) for a in eqn.params["permutation"]])


def _squeeze(g, eqn, ins, env):
    return g.node("Squeeze", [ins[0], g.const(np.array(eqn.params["dimensions"], np.int64))])


def _dim_as_value(g, eqn, ins, env):
    return g.node("Cast", [g.dim_value(eqn.params["dim"], env)],
                  to=_dtype(eqn.outvars[0].aval.dtype))


def _rev(g, eqn, ins, env):
    axes = list(eqn.params["dimensions"])
    big = np.iinfo(np.int64).max
    return g.node("Slice", [ins[0], g.const(np.full(len(axes), -1, np.int64)),
                            g.const(np.full(len(axes), -big, np.int64)),
                            g.const(np.array(axes, np.int64)), g.const(np.full(len(axes), -1, np.int64))])


def _clamp(g, eqn, ins, env):
    lo, x, hi = ins
    return g.node("Min", [g.node("Max", [x, lo]), hi])


_RULES: dict[str, Callable] = {
    "conv_general_dilated": _conv, "reduce_window_max": _reduce_window_max,
    "dot_general": _dot_general, "broadcast_in_dim": _broadcast_in_dim, "reshape": _reshape,
    "slice": _slice, "pad": _pad, "argmax": _argmax, "integer_pow": _integer_pow,
    "select_n": _select_n, "convert_element_type": _convert, "rsqrt": _rsqrt, "square": _square,
    "concatenate": _concatenate, "transpose": _transpose, "squeeze": _squeeze,
    "dim_as_value": _dim_as_value, "clamp": _clamp, "rev": _rev,
    **{name: _reduce for name in _REDUCE},
}
_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _foldable(g: Graph, eqn, ins) -> bool:
    if not ins or not all(n in g.values for n in ins):
        return False
    if any(k in eqn.params for k in _CALL_PARAMS):
        return False
    return all(isinstance(d, (int, np.integer)) for v in eqn.outvars for d in v.aval.shape)


def _emit(g: Graph, jaxpr, consts, args, env) -> list[str]:
    """Adds the equations of ``jaxpr`` (a core.Jaxpr) to ``g``; returns its outputs' names."""
    from jax.extend import core as jcore

    names: dict = {}

    def read(v):
        if isinstance(v, jcore.Literal):
            return g.const(np.asarray(v.val, np.dtype(v.aval.dtype)))
        return names[v]

    for var, value in zip(jaxpr.constvars, consts):
        names[var] = value if isinstance(value, str) else g.const(np.asarray(value))
    for var, name in zip(jaxpr.invars, args):
        names[var] = name
    for eqn in jaxpr.eqns:
        prim = eqn.primitive.name
        ins = [read(v) for v in eqn.invars]
        sub = next((eqn.params[k] for k in _CALL_PARAMS if k in eqn.params), None)
        if _foldable(g, eqn, ins):
            # Work on the weights alone (a transposed conv's kernel flipped and
            # regrouped, BatchNorm's scale): done once here, in jax, as JAX does it.
            values = eqn.primitive.bind(*[g.values[n] for n in ins], **eqn.params)
            values = values if eqn.primitive.multiple_results else [values]
            outs = [g.const(np.asarray(v)) for v in values]
        elif sub is not None:  # jit, custom_jvp_call, closed_call...: inline the body
            inner, inner_consts = (sub.jaxpr, sub.consts) if hasattr(sub, "consts") else (sub, [])
            outs = _emit(g, inner, inner_consts, ins[:len(inner.invars)], env)
        elif prim in _IDENTITY:
            outs = ins[:len(eqn.outvars)]
        elif prim in _ELEMENTWISE:
            outs = [g.node(_ELEMENTWISE[prim], ins)]
        elif prim in _RULES:
            outs = [_RULES[prim](g, eqn, ins, env)]
        else:
            raise UnsupportedPrimitive(
                f"no ONNX form for the jax primitive {prim!r} (in {str(eqn)[:200]}); "
                "fluxseg's converter covers: " + ", ".join(sorted({*_RULES, *_ELEMENTWISE})))
        for var, name in zip(eqn.outvars, outs):
            names[var] = name
    return [read(v) for v in jaxpr.outvars]


def size_check(g: Graph, dim: str, step: int, offset: int, label: str) -> str:
    """``(dim - offset) / step`` as an int64 scalar, failing at run time unless
    ``dim = step * k + offset`` with k >= 1.

    ONNX has no assertion op, so the failure is a Reshape of a one-element
    tensor to zero elements, in a node whose name states the rule: that name is
    what onnxruntime's error shows.
    """
    rest = g.node("Sub", [dim, g.const(np.array(offset, np.int64))])
    ok = g.node("And", [g.node("Equal", [g.node("Mod", [rest, g.const(np.array(step, np.int64))]),
                                         g.const(np.array(0, np.int64))]),
                        g.node("GreaterOrEqual", [rest, g.const(np.array(step, np.int64))])])
    count = g.unsqueeze(g.node("Cast", [ok], to=_dtype(np.int64)))
    rule = f"{step}*k+{offset}" if offset else f"{step}*k"
    probe = g.node("Reshape", [g.const(np.zeros(1, np.float32)), count], allowzero=1,
                   name=f"fluxseg_input_{label}_must_be_{rule}_with_k_at_least_1_see_model_json")
    zero = g.node("Cast", [g.node("ReduceSum", [probe], keepdims=0)], to=_dtype(np.int64))
    return g.node("Add", [g.node("Div", [rest, g.const(np.array(step, np.int64))]), zero])


def convert(closed_jaxpr, input_name: str, input_dtype, input_shape: list, dim_rules: dict,
            output_names: list[str], output_dims: list[list[str]], doc: str = "") -> Any:
    """An onnx.ModelProto of ``closed_jaxpr`` (one input, named outputs).

    input_shape: per axis an int or a dimension-parameter name (a string);
    dim_rules: {jax dimension variable: (input axis, step, offset, label)}, how
    each variable is read back from the input's runtime shape.
    output_dims: per output, its dimension strings (symbolic names or ints as text).
    """
    onnx = _onnx()
    g = Graph()
    shape = g.node("Shape", [input_name])
    env, checks = {}, []
    for var, (axis, step, offset, label) in dim_rules.items():
        size = g.node("Gather", [shape, g.const(np.array(axis, np.int64))], axis=0)
        if step == 1 and offset == 0:
            env[var] = _Dim(g, size)
        else:
            checked = size_check(g, size, step, offset, label)
            env[var] = _Dim(g, checked)
            checks.append(checked)
    images = input_name
    if checks:
        # The images pass through a reshape to their own shape plus the checks' zeros, so
        # every output depends on the checks even where no shape reads the variables.
        total = checks[0]
        for c in checks[1:]:  # (Sum takes no integers)
            total = g.node("Add", [total, c])
        zero = g.node("Sub", [total, total])
        images = g.node("Reshape", [input_name, g.node("Add", [shape, zero])], allowzero=1)
    outs = _emit(g, closed_jaxpr.jaxpr, closed_jaxpr.consts, [images], env)
    final = []
    for name, out in zip(output_names, outs):
        g.nodes.append(onnx.helper.make_node("Identity", [out], [name], name=f"output_{name}"))
        final.append(name)
    inputs = [onnx.helper.make_tensor_value_info(input_name, _dtype(input_dtype), input_shape)]
    outputs = [onnx.helper.make_tensor_value_info(name, _dtype(v.aval.dtype), dims)
               for name, v, dims in zip(output_names, closed_jaxpr.jaxpr.outvars, output_dims)]
    graph = onnx.helper.make_graph(g.nodes, "fluxseg", inputs, outputs, initializer=g.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="fluxseg", doc_string=doc)
    model.ir_version = min(model.ir_version, 10)  # what onnxruntime releases of 2025-26 read
    onnx.checker.check_model(model)
    return model
