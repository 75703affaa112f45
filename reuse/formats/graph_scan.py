"""Scan a SavedModel's TensorFlow graph for operations that reach outside the model.

A SavedModel holds no Python code, but its graph is a program: TensorFlow has operations that
read and write files, print, call back into Python, talk to other machines or dump debug
output, and a SavedModel from a stranger may call any of them when it is loaded or run
(TensorFlow's SECURITY.md: "models are programs"). `saved_model_cli scan` checks a graph
against a short deny-list (ReadFile, WriteFile, PrintV2) and follows only direct function
calls; `scan_savedmodel` uses a longer list (`RISKY_OPS`) and follows every way a graph reaches
a function: calls, `If`/`While`/`Case` branches, dataset functions, gradient functions and the
functions the object graph restores.

Checkpoint operations (SaveV2, RestoreV2, ...) are what every SavedModel's own saver uses; they
are allowed where only the saver reaches them (the `saver_def`'s save and restore nodes, and
what they call), and reported anywhere else.

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
        ),
        _FILES,
    ),
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


def _called_functions(node, functions: dict) -> list[str]:
    """The graph functions a node calls: its op (a function called by name) and every
    function-valued attribute (PartitionedCall's `f`, If/While branches, dataset functions)."""
    names = [node.op] if node.op in functions else []
    for value in node.attr.values():
        if value.func.name:
            names.append(value.func.name)
        names.extend(f.name for f in value.list.func)
    return [n for n in names if n in functions]


def _backward(nodes: dict, starts) -> set[str]:
    """The top-level nodes that `starts` depend on, through data and control inputs."""
    seen: set[str] = set()
    stack = [s for s in starts if s in nodes]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(i for i in map(_node_name, nodes[name].input) if i in nodes)
    return seen


def _reach(roots, functions: dict) -> set[str]:
    """The graph functions reachable from the function names `roots`."""
    seen: set[str] = set()
    stack = [r for r in roots if r in functions]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in functions[name].node_def:
            stack.extend(_called_functions(node, functions))
    return seen


def _scan_meta_graph(meta) -> list[Finding]:
    graph = meta.graph_def
    functions = {f.signature.name: f for f in graph.library.function}
    nodes = {n.name: n for n in graph.node}
    saver = [meta.saver_def.save_tensor_name, meta.saver_def.restore_op_name]
    saver_nodes = _backward(nodes, [_node_name(t) for t in saver if t])
    # What runs besides the saver: every other top-level node, and what the signatures and
    # the init ops need even where the saver shares it.
    served = [t.name for sig in meta.signature_def.values() for t in sig.outputs.values()]
    served += [n for c in meta.collection_def.values() for n in c.node_list.value]
    rest_nodes = (set(nodes) - saver_nodes) | _backward(nodes, [_node_name(t) for t in served])
    rest_roots = [f for n in rest_nodes for f in _called_functions(nodes[n], functions)]
    rest_roots += list(meta.object_graph_def.concrete_functions)
    rest_roots += [g.gradient_func for g in graph.library.gradient]
    saver_roots = [f for n in saver_nodes for f in _called_functions(nodes[n], functions)]
    saver_only = _reach(saver_roots, functions)
    rest = _reach(rest_roots, functions)
    # Functions nothing reaches are scanned as if they ran: a loader may call them by name.
    rest |= _reach(set(functions) - saver_only - rest, functions)
    saver_only -= rest

    findings: list[Finding] = []

    def check(node, where: str, allow_checkpoint: bool) -> None:
        reason = RISKY_OPS.get(node.op)
        if reason and not (allow_checkpoint and node.op in CHECKPOINT_OPS):
            findings.append(Finding(node.op, reason, where))

    for name in sorted(nodes):
        check(nodes[name], "the top-level graph", allow_checkpoint=name not in rest_nodes)
    for name in sorted(rest | saver_only):
        for node in functions[name].node_def:
            check(node, name, allow_checkpoint=name in saver_only)
    return findings


def scan_savedmodel(path: str | os.PathLike) -> list[Finding]:
    """The risky operations (`RISKY_OPS`) in a SavedModel folder, without loading it.

    Every meta graph is scanned: its top-level nodes and the graph functions they, the
    object graph and the gradient registry reach. Checkpoint operations reached only by the
    SavedModel's own saver are not reported.

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
