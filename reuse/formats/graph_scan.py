"""Scan a SavedModel's TensorFlow graph for operations that reach outside the model.

A SavedModel holds no Python code, but its graph is a program: TensorFlow has operations that
read and write files, print, call back into Python, talk to other machines or dump debug
output, and a SavedModel from a stranger may call any of them when it is loaded or run
(TensorFlow's SECURITY.md: "models are programs"). `saved_model_cli scan` checks a graph
against a short deny-list (ReadFile, WriteFile, PrintV2) and follows only direct function
calls; `scan_savedmodel` uses a longer list (`RISKY_OPS`) and follows every way a graph reaches
a function: calls, `If`/`While`/`Case` branches, dataset functions, gradient functions and the
functions the object graph restores.

Checkpoint operations (SaveV2, RestoreV2, ...) are what every SavedModel's own saver uses. They
are allowed on the save path (what only the `saver_def`'s save tensor reaches: no loader runs
it), and on the restore path (what only its restore op reaches: the TF1 loader runs it, feeding
the filename tensor with the model's own `variables/variables`) only as reads of that fed
filename. Anywhere else, or as writes or reads of another path on the restore path, they are
reported. What a loader fetches by name (signatures, init ops and other collections, local
variables' initializers, assets) counts as run, even inside the saver.

Operations that run a program the scan cannot see (`DatasetFromGraph`: a serialized dataset
graph, which may sit in a variable; `MlirPassthroughOp`) are reported as such.

`check_savedmodel` turns findings into `UnsafeModelError` unless the caller passed `unsafe`
(`--unsafe`). `reuse.formats.model_io` and `reuse.inspection.savedmodel` call it before
TensorFlow loads the folder, and `SavedModelBlock.from_config` before a saved model's block
reloads its SavedModel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reuse.core.errors import ModelLoadError, UnsafeModelError

_FILES = "reads or writes files"
_CHECKPOINT = "reads or writes checkpoint files"
_PRINT = "prints"
_PYTHON = "calls Python"
_NETWORK = "talks to other machines"
_DEBUG = "writes debug output"
_HIDDEN = "runs a program the scan cannot see"

# Checkpoint operations that only read; allowed (besides anywhere the save path alone reaches)
# where the file they read is the one the loader passes: the saver_def's filename tensor.
_CHECKPOINT_READS = frozenset(("Restore", "RestoreV2", "RestoreSlice", "DTensorRestoreV2"))

# Operations that read a protobuf descriptor from the file named in `descriptor_source`
# unless it is the built-in pool ("local://") or inline bytes ("bytes://...").
_DESCRIPTOR_OPS = frozenset(("DecodeProtoV2", "EncodeProto"))

# Operations that call the function in their `f` attribute with their inputs, in order.
_CALL_OPS = frozenset(("PartitionedCall", "StatefulPartitionedCall"))

# Checkpoint operations: allowed where only the SavedModel's own saver reaches them.
CHECKPOINT_OPS: dict[str, str] = dict.fromkeys(
    (
        "Save",
        "SaveV2",
        "SaveSlices",
        "Restore",
        "RestoreV2",
        "RestoreSlice",
        "MergeV2Checkpoints",
        "DTensorRestoreV2",
        "LoadAndRemapMatrix",
    ),
    _CHECKPOINT,
)

# Operations that reach outside the model, with what they do. Built from TensorFlow 2.21's
# registered op list: file system, summaries, readers and file-backed datasets, printing,
# Python callbacks, RPC and tf.data service, debugger ops.
RISKY_OPS: dict[str, str] = {
    **dict.fromkeys(
        (
            "ReadFile",
            "WriteFile",
            "MatchingFiles",
            "MatchingFilesDataset",
            "ExperimentalMatchingFilesDataset",
            "FileSystemSetConfiguration",
            "ImmutableConst",
            "InitializeTableFromTextFile",
            "InitializeTableFromTextFileV2",
            "TFRecordDataset",
            "TFRecordDatasetV2",
            "FixedLengthRecordDataset",
            "FixedLengthRecordDatasetV2",
            "TextLineDataset",
            "CSVDataset",
            "CSVDatasetV2",
            "ExperimentalCSVDataset",
            "LMDBDataset",
            "ExperimentalLMDBDataset",
            "SqlDataset",
            "ExperimentalSqlDataset",
            "DatasetToTFRecord",
            "ExperimentalDatasetToTFRecord",
            "SaveDataset",
            "SaveDatasetV2",
            "LoadDataset",
            "DistributedSave",
            "SnapshotDataset",
            "SnapshotDatasetV2",
            "SnapshotDatasetReader",
            "SnapshotNestedDatasetReader",
            "SnapshotChunkDataset",
            "ListSnapshotChunksDataset",
            "FixedLengthRecordReader",
            "FixedLengthRecordReaderV2",
            "TextLineReader",
            "TextLineReaderV2",
            "TFRecordReader",
            "TFRecordReaderV2",
            "WholeFileReader",
            "WholeFileReaderV2",
            "LMDBReader",
            "RecordInput",
            "CreateSummaryFileWriter",
            "CreateSummaryDbWriter",
            "WriteSummary",
            "WriteScalarSummary",
            "WriteHistogramSummary",
            "WriteImageSummary",
            "WriteAudioSummary",
            "WriteGraphSummary",
            "WriteRawProtoSummary",
            "ImportEvent",
            "FlushSummaryWriter",
            "StatsAggregatorSetSummaryWriter",
            "CacheDataset",
            "CacheDatasetV2",
            "GenerateVocabRemapping",
            "Skipgram",
            "FixedUnigramCandidateSampler",
            "CalibrationStatisticsSaver",
        ),
        _FILES,
    ),
    # A program the scan cannot see: a serialized dataset graph (its functions, file reads and
    # writes included, are not in the SavedModel's function library) or an MLIR module.
    **dict.fromkeys(("DatasetFromGraph", "MlirPassthroughOp"), _HIDDEN),
    **CHECKPOINT_OPS,
    **dict.fromkeys(("Print", "PrintV2"), _PRINT),
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc"), _PYTHON),
    **dict.fromkeys(
        (
            "RpcServer",
            "RpcServerStart",
            "RpcServerRegister",
            "RpcClient",
            "RpcCall",
            "RpcCheckStatus",
            "RpcGetValue",
            "DataServiceDataset",
            "DataServiceDatasetV2",
            "DataServiceDatasetV3",
            "DataServiceDatasetV4",
            "RegisterDataset",
            "RegisterDatasetV2",
        ),
        _NETWORK,
    ),
    **dict.fromkeys(
        (
            "DebugIdentity",
            "DebugIdentityV2",
            "DebugIdentityV3",
            "DebugNanCount",
            "DebugNumericSummary",
            "DebugNumericSummaryV2",
            "DumpTensor",
        ),
        _DEBUG,
    ),
}


@dataclass(frozen=True)
class Finding:
    """One risky operation in a SavedModel: its op type, what it does, and where it is (the
    graph function that holds it, or "the top-level graph")."""

    op: str
    reason: str
    where: str


def _read_savedmodel_proto(path: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    binary, text = path / "saved_model.pb", path / "saved_model.pbtxt"
    try:
        if binary.exists():
            proto.ParseFromString(binary.read_bytes())
        else:
            from google.protobuf import text_format

            text_format.Parse(text.read_text(), proto)
    except Exception as err:  # protobuf raises DecodeError, ParseError, UnicodeDecodeError
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"cannot read SavedModel {path}: {first}", "check that the folder is complete"
        ) from err
    return proto


def _node_name(tensor: str) -> str:
    """'^name' or 'name:0' -> 'name'."""
    return tensor.lstrip("^").split(":")[0]


def _strings(message):
    """Every string field in a protobuf message, nested messages and maps included."""
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = [*value.keys(), *value.values()]
        else:
            repeated = getattr(field, "is_repeated", None)
            if repeated is None:  # protobuf before 6.31
                repeated = field.label == field.LABEL_REPEATED
            items = value if repeated else [value]
        for item in items:
            if isinstance(item, str):
                yield item
            elif hasattr(item, "ListFields"):
                yield from _strings(item)


def _collection_names(meta) -> list[str]:
    """The strings a meta graph's collections hold: node lists, and the names inside their
    serialized protos (a local variable's initializer, which the TF1 loader runs; queue
    runners, control-flow contexts, savers)."""
    from tensorflow.core.framework import variable_pb2
    from tensorflow.core.protobuf import control_flow_pb2, queue_runner_pb2, saver_pb2

    kinds = (
        variable_pb2.VariableDef,
        queue_runner_pb2.QueueRunnerDef,
        control_flow_pb2.CondContextDef,
        control_flow_pb2.WhileContextDef,
        saver_pb2.SaverDef,
    )
    names: list[str] = []
    for collection in meta.collection_def.values():
        names += collection.node_list.value
        for raw in collection.bytes_list.value:
            for kind in kinds:
                message = kind()
                try:
                    message.ParseFromString(raw)
                except Exception:  # not this kind  # noqa: S112
                    continue
                names += _strings(message)
    return names


def _func_names(value):
    """The functions an attribute value names, with those named in their own attributes."""
    funcs = ([value.func] if value.func.name else []) + list(value.list.func)
    for func in funcs:
        yield func.name
        for inner in func.attr.values():
            yield from _func_names(inner)


def _called_functions(node, functions: dict) -> list[str]:
    """The graph functions a node calls: its op (a function called by name) and every
    function-valued attribute (PartitionedCall's `f`, If/While branches, dataset functions,
    and the functions those are instantiated with)."""
    names = [node.op] if node.op in functions else []
    for value in node.attr.values():
        names.extend(_func_names(value))
    return [n for n in names if n in functions]


def _positional_callee(node, functions: dict) -> str | None:
    """The function a node calls with its inputs as the function's arguments, in order."""
    if node.op in functions:
        return node.op
    if node.op in _CALL_OPS and "f" in node.attr and node.attr["f"].func.name in functions:
        return node.attr["f"].func.name
    return None


def _closure(starts, neighbours) -> set[str]:
    """Every name reachable from `starts` (themselves included) by `neighbours(name)`."""
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(neighbours(name))
    return seen


def _backward(nodes: dict, starts) -> set[str]:
    """The top-level nodes that `starts` depend on, through data and control inputs."""
    return _closure(
        [s for s in starts if s in nodes],
        lambda name: [i for node in nodes[name] for i in map(_node_name, node.input) if i in nodes],
    )


def _reach(roots, functions: dict) -> set[str]:
    """The graph functions reachable from the function names `roots`."""
    return _closure(
        [r for r in roots if r in functions],
        lambda name: [
            f
            for fdef in functions[name]
            for node in fdef.node_def
            for f in _called_functions(node, functions)
        ],
    )


def _loader_path(meta, functions: dict, restore_nodes: set[str], restore_functions: set[str]):
    """Which values carry the checkpoint path the loader feeds when it runs the restore op
    (the saver_def's filename tensor): that tensor, Identity ops of it, and the arguments of
    restore-path functions that every caller calls with it (`PartitionedCall`, or a function
    called by name). Outside the restore path the filename tensor is not fed: its default,
    which the SavedModel chooses, would be read.

    Args:
        restore_nodes: the top-level nodes only the restore op runs.
        restore_functions: the functions only the restore path reaches.

    Returns:
        is_fed(where, tensor): whether `tensor` (an input string) in `where` (a function
        name, or None for the top-level graph) carries the loader's path.
    """
    graph = meta.graph_def
    calls = [(None, n, _positional_callee(n, functions)) for n in graph.node]
    calls += [
        (name, n, _positional_callee(n, functions))
        for name, fdefs in functions.items()
        for fdef in fdefs
        for n in fdef.node_def
    ]
    calls = [c for c in calls if c[2] is not None]
    args = {
        name: set(range(len(fdefs[0].signature.input_arg)))
        for name, fdefs in functions.items()
        if name in restore_functions and len(fdefs) == 1
    }

    def norm(where, tensor: str) -> str:
        return tensor if where is not None or ":" in tensor else f"{tensor}:0"

    def fed_in(where) -> set[str]:
        if where is None:
            name = meta.saver_def.filename_tensor_name
            fed, body = ({norm(None, name)} if name else set()), graph.node
        elif where in args:
            fdef = functions[where][0]
            fed = {fdef.signature.input_arg[i].name for i in args[where]}
            body = fdef.node_def
        else:
            return set()
        suffix = ":0" if where is None else ":output:0"
        identities: dict[str, list[str]] = {}  # tensor -> the Identity outputs that copy it
        for n in body:
            if n.op == "Identity" and n.input:
                identities.setdefault(norm(where, n.input[0]), []).append(n.name + suffix)
        stack = list(fed)
        while stack:
            for copy in identities.get(stack.pop(), []):
                if copy not in fed:
                    fed.add(copy)
                    stack.append(copy)
        return fed

    changed = True
    while changed:
        changed = False
        fed = {where: fed_in(where) for where in (None, *args)}
        for caller, node, callee in calls:
            if callee not in args:
                continue
            data = [i for i in node.input if not i.startswith("^")]
            in_restore = node.name in restore_nodes if caller is None else caller in args
            caller_fed = fed.get(caller, set()) if in_restore else set()
            keep = {
                i for i in args[callee] if i < len(data) and norm(caller, data[i]) in caller_fed
            }
            if keep != args[callee]:
                args[callee] = keep
                changed = True
    fed = {where: fed_in(where) for where in (None, *args)}
    return lambda where, tensor: norm(where, tensor) in fed.get(where, set())


def _reads_descriptor_file(node) -> bool:
    source = node.attr["descriptor_source"].s if "descriptor_source" in node.attr else b"local://"
    return not (source == b"local://" or source.startswith(b"bytes://"))


def _scan_meta_graph(meta) -> list[Finding]:
    graph = meta.graph_def
    functions: dict[str, list] = {}
    for fdef in graph.library.function:
        functions.setdefault(fdef.signature.name, []).append(fdef)
    nodes: dict[str, list] = {}
    for node in graph.node:
        nodes.setdefault(node.name, []).append(node)
    saver = meta.saver_def
    save = _backward(nodes, [_node_name(saver.save_tensor_name)] if saver.save_tensor_name else [])
    restore = _backward(nodes, [_node_name(saver.restore_op_name)] if saver.restore_op_name else [])
    # What runs besides the saver (no loader runs the save path; the TF1 loader runs the
    # restore op with its own checkpoint path): every other node and what it needs, and what
    # the loader or a caller fetches by name even inside the saver: the signatures, the
    # collections (init ops, local variables' initializers), the assets.
    named = _collection_names(meta)
    for message in (*meta.signature_def.values(), *meta.asset_file_def):
        named += _strings(message)
    others = _backward(nodes, (set(nodes) - save - restore) | {_node_name(t) for t in named})
    restore -= others
    save -= others | restore

    extra_refs = set(meta.object_graph_def.concrete_functions)
    extra_refs |= {g.gradient_func for g in graph.library.gradient}
    extra_refs |= {g.gradient_func for g in graph.library.registered_gradients}
    # Grappler's implementation selector may swap a call for any function that declares the
    # same `api_implements`: such functions may run wherever one of them is called.
    extra_refs |= {n for n, fs in functions.items() if any("api_implements" in f.attr for f in fs)}
    for node in [*graph.node, *(n for fs in functions.values() for f in fs for n in f.node_def)]:
        refs = _called_functions(node, functions)
        callee = _positional_callee(node, functions)
        if callee is not None:
            refs.remove(callee)
        extra_refs.update(refs)

    def called_by(names) -> list[str]:
        return [f for n in names for node in nodes[n] for f in _called_functions(node, functions)]

    other_functions = _reach([*called_by(others), *extra_refs], functions)
    restore_functions = _reach(called_by(restore), functions) - other_functions
    save_functions = _reach(called_by(save), functions) - other_functions - restore_functions
    # Functions nothing reaches are scanned as if they ran: a loader may call them by name.
    other_functions |= _reach(
        set(functions) - other_functions - restore_functions - save_functions, functions
    )
    is_fed = _loader_path(meta, functions, restore, restore_functions)

    findings: list[Finding] = []

    def check(node, where: str | None, on_save: bool, on_restore: bool) -> None:
        reason = RISKY_OPS.get(node.op)
        if node.op in _DESCRIPTOR_OPS and _reads_descriptor_file(node):
            reason = _FILES
        if not reason:
            return
        if node.op in CHECKPOINT_OPS and (
            on_save
            or (
                on_restore
                and node.op in _CHECKPOINT_READS
                and node.input
                and is_fed(where, node.input[0])
            )
        ):
            return
        findings.append(Finding(node.op, reason, where or "the top-level graph"))

    for node in graph.node:
        check(node, None, node.name in save, node.name in restore)
    for name in sorted(functions):
        for fdef in functions[name]:
            for node in fdef.node_def:
                check(node, name, name in save_functions, name in restore_functions)
    return findings


def scan_savedmodel(path: str | os.PathLike) -> list[Finding]:
    """The risky operations (`RISKY_OPS`) in a SavedModel folder, without loading it.

    Every meta graph is scanned: its top-level nodes and the graph functions they, the
    object graph and the gradient registry reach. Checkpoint operations of the SavedModel's
    own saver are not reported: any on its save path, reads of the loader's path on its
    restore path.

    Example:
        >>> scan_savedmodel("exported/")   # a Keras model.export() folder
        []

    Args:
        path: a SavedModel folder (`saved_model.pb` or `saved_model.pbtxt` inside).

    Returns:
        One `Finding` per (operation, function) found, in a stable order; [] for a clean graph.

    Raises:
        ModelLoadError: the folder holds no readable `saved_model.pb`/`.pbtxt`.
    """
    p = Path(path)
    if not (p / "saved_model.pb").exists() and not (p / "saved_model.pbtxt").exists():
        raise ModelLoadError(f"{p} holds no saved_model.pb", "pass a SavedModel folder")
    proto = _read_savedmodel_proto(p)
    found: dict[tuple[str, str], Finding] = {}
    for meta in proto.meta_graphs:
        for finding in _scan_meta_graph(meta):
            found.setdefault((finding.op, finding.where), finding)
    return sorted(found.values(), key=lambda f: (f.op, f.where))


def check_savedmodel(path: str | os.PathLike, *, unsafe: bool = False) -> list[Finding]:
    """Refuse a SavedModel whose graph reaches outside the model, unless `unsafe`.

    Args:
        path: a SavedModel folder.
        unsafe: the user trusts the file (`--unsafe`): findings are returned, not raised.

    Returns:
        The findings of `scan_savedmodel` ([] when the graph is clean).

    Raises:
        UnsafeModelError: findings and not `unsafe`; the message names the operations.
        ModelLoadError: the folder cannot be read.
    """
    findings = scan_savedmodel(path)
    if findings and not unsafe:
        ops = sorted({f"{f.op} ({f.reason})" for f in findings})
        shown = ", ".join(ops[:4]) + (f" and {len(ops) - 4} more" if len(ops) > 4 else "")
        raise UnsafeModelError(
            f"the SavedModel {path} runs TensorFlow operations that reach outside the model: {shown}",
            "pass --unsafe only if you trust where it came from",
        )
    return findings
