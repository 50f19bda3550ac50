"""Check model files against their own size before anything allocates: GGUF, safetensors, config.json.

A model file states lengths and shapes that readers believe: gguf's GGUFReader builds numpy objects for
every array element a header declares, transformers builds a model as big as config.json (or the GGUF
metadata) says, and safetensors trusts its header length. A hostile or damaged file can thus ask for
gigabytes, or minutes of allocation, from a few bytes. Here every length is checked against the bytes
left in the file, every tensor's shape times its dtype size against its data, and the model a config
describes against the weights there are (built on the meta device, which allocates nothing). Each
refusal is one RegistryError naming the file.
"""

from __future__ import annotations

import json
import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from camelid.errors import RegistryError

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)  # what gguf's reader (and so transformers) reads
GGUF_MAX_DIMS = 4
# GGUFReader keeps a few numpy objects per array element and per tensor, so the counts a header may
# declare are capped besides being checked against the file size. The largest real vocabularies hold
# about 260k tokens (plus as many scores, types and merges); real GGUFs hold about a thousand tensors.
GGUF_MAX_ARRAY_ITEMS = 1 << 21
GGUF_MAX_TOTAL_ITEMS = 1 << 22
GGUF_MAX_TENSORS = 1 << 16
SAFETENSORS_MAX_HEADER = 32 << 20  # real headers are kilobytes (a big shard's: about 200 KB)
SAFETENSORS_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2,
                           "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8,
                           "F64": 8, "C64": 8}
# A config may describe a little more than its files hold (an untied head initialised fresh), never this much.
MAX_PARAMETERS_BEYOND_WEIGHTS = 2.0
PARAMETER_SLACK = 1_000_000

# GGUF value types: scalar type -> (struct format, bytes); 8 is a string, 9 an array
_GGUF_SCALARS = {0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4), 6: ("f", 4),
                 7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8)}
_STRING, _ARRAY = 8, 9


@dataclass
class WeightShapes:
    """The tensors a weight file (or folder) holds: name -> shape, in the file's own naming."""

    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def n_elements(self) -> int:
        total = 0
        for shape in self.shapes.values():
            n = 1
            for d in shape:
                n *= d
            total += n
        return total


class _GGUFBytes:
    """Bounded little- or big-endian reads from a memory-mapped GGUF; a read past the end is a refusal."""

    def __init__(self, buf, path: Path, order: str):
        self.buf, self.path, self.order, self.pos = buf, path, order, 0

    def left(self) -> int:
        return len(self.buf) - self.pos

    def refuse(self, what: str) -> RegistryError:
        return RegistryError(f"{self.path}: not a valid GGUF file: {what} (at byte {self.pos} of {len(self.buf)}); "
                             "the file is damaged or was not written by a GGUF converter")

    def scalar(self, fmt: str, size: int, what: str):
        if size > self.left():
            raise self.refuse(f"{what} runs past the end of the file")
        (value,) = struct.unpack_from(self.order + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self, what: str, keep: bool = True) -> str | None:
        n = self.scalar("Q", 8, f"the length of {what}")
        if n > self.left():
            raise self.refuse(f"{what} declares {n} bytes but only {self.left()} are left in the file")
        raw = bytes(self.buf[self.pos:self.pos + n]) if keep else None
        self.pos += n
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.refuse(f"{what} is not UTF-8") from None


@dataclass
class GGUFSummary:
    """What a checked GGUF holds: its architecture, its tensors' shapes and its metadata scalars."""

    architecture: str | None
    weights: WeightShapes
    metadata: dict[str, object]


def check_gguf(path: Path) -> GGUFSummary:
    """Walk a GGUF's header with every length checked against the bytes left; refuse what would not fit."""
    path = Path(path)
    size = path.stat().st_size
    if size < 24:
        raise RegistryError(f"{path}: not a valid GGUF file: {size} bytes is shorter than a GGUF header")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != GGUF_MAGIC:
            raise RegistryError(f"{path}: not a GGUF file (it does not start with the bytes 'GGUF')")
        version = struct.unpack_from("<I", buf, 4)[0]
        order = "<" if version & 0xFFFF else ">"  # as gguf's reader: a big-endian file's version reads swapped
        r = _GGUFBytes(buf, path, order)
        r.pos = 4
        version = r.scalar("I", 4, "the version")
        if version not in GGUF_VERSIONS:
            raise r.refuse(f"GGUF version {version} (readable: {', '.join(map(str, GGUF_VERSIONS))})")
        n_tensors = r.scalar("Q", 8, "the tensor count")
        n_kv = r.scalar("Q", 8, "the metadata count")
        if n_kv * 12 > r.left():  # each entry: at least a key length and a type
            raise r.refuse(f"the header declares {n_kv} metadata entries, more than the file can hold")
        if n_tensors > GGUF_MAX_TENSORS or n_tensors * 24 > r.left():
            raise r.refuse(f"the header declares {n_tensors} tensors (at most {GGUF_MAX_TENSORS}, and what the "
                           "file can hold)")
        metadata: dict[str, object] = {}
        budget = [GGUF_MAX_TOTAL_ITEMS]
        for _ in range(n_kv):
            key = r.string("a metadata key")
            vtype = r.scalar("I", 4, f"the type of {key}")
            metadata[key] = _gguf_value(r, vtype, key, budget)
        alignment = metadata.get("general.alignment", 32)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise r.refuse(f"general.alignment is {alignment!r}, not a power of two")
        infos = [_gguf_tensor_info(r) for _ in range(n_tensors)]
        data_start = -(-r.pos // alignment) * alignment
        data_bytes = size - data_start
        weights = WeightShapes()
        for name, dims, ggml_type, offset in infos:
            nbytes = _ggml_bytes(r, name, dims, ggml_type)
            if offset + nbytes > data_bytes:
                raise r.refuse(f"tensor {name} of shape {list(dims)} needs {nbytes} bytes at offset {offset}, past "
                               f"the {max(data_bytes, 0)} bytes of tensor data in the file")
            if name in weights.shapes:
                raise r.refuse(f"tensor {name} is listed twice")
            weights.shapes[name] = tuple(reversed(dims))  # GGUF lists the fastest-varying dimension first
    arch = metadata.get("general.architecture")
    return GGUFSummary(arch if isinstance(arch, str) else None, weights, metadata)


def _gguf_value(r: _GGUFBytes, vtype: int, key: str, budget: list[int]):
    """One metadata value; arrays are skipped (not kept) once their length is known to fit."""
    if vtype in _GGUF_SCALARS:
        return r.scalar(*_GGUF_SCALARS[vtype], key)
    if vtype == _STRING:
        return r.string(f"the value of {key}")
    if vtype != _ARRAY:
        raise r.refuse(f"{key} has unknown value type {vtype}")
    item_type = r.scalar("I", 4, f"the item type of {key}")
    count = r.scalar("Q", 8, f"the length of {key}")
    smallest = _GGUF_SCALARS[item_type][1] if item_type in _GGUF_SCALARS else 8 if item_type == _STRING else 12
    if item_type not in _GGUF_SCALARS and item_type not in (_STRING, _ARRAY):
        raise r.refuse(f"{key} is an array of unknown item type {item_type}")
    if count * smallest > r.left():
        raise r.refuse(f"{key} declares {count} items, more than the {r.left()} bytes left in the file can hold")
    budget[0] -= count
    if count > GGUF_MAX_ARRAY_ITEMS or budget[0] < 0:
        raise r.refuse(f"{key} declares {count} items; readers keep every item in memory, and no real model "
                       f"needs more than {GGUF_MAX_ARRAY_ITEMS} in one array ({GGUF_MAX_TOTAL_ITEMS} in all)")
    if item_type in _GGUF_SCALARS:
        r.pos += count * smallest
    else:
        for _ in range(count):
            if item_type == _STRING:
                r.string(f"an item of {key}", keep=False)
            else:
                _gguf_value(r, _ARRAY, key, budget)
    return f"<array of {count}>"


def _gguf_tensor_info(r: _GGUFBytes) -> tuple[str, tuple[int, ...], int, int]:
    name = r.string("a tensor name")
    n_dims = r.scalar("I", 4, f"the rank of tensor {name}")
    if not 1 <= n_dims <= GGUF_MAX_DIMS:
        raise r.refuse(f"tensor {name} has {n_dims} dimensions (GGUF allows 1 to {GGUF_MAX_DIMS})")
    dims = tuple(r.scalar("Q", 8, f"a dimension of tensor {name}") for _ in range(n_dims))
    ggml_type = r.scalar("I", 4, f"the type of tensor {name}")
    offset = r.scalar("Q", 8, f"the offset of tensor {name}")
    return name, dims, ggml_type, offset


def _ggml_bytes(r: _GGUFBytes, name: str, dims: tuple[int, ...], ggml_type: int) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise r.refuse(f"tensor {name} has unknown type {ggml_type}") from None
    n = 1
    for d in dims:
        n *= d
    if n == 0 or dims[0] % block:
        raise r.refuse(f"tensor {name} has shape {list(dims)}, which its type's blocks of {block} do not tile")
    return n // block * type_size


# ---- safetensors ------------------------------------------------------------------------------------

def check_safetensors(path: Path) -> WeightShapes:
    """Read a safetensors header with its length, offsets and shapes checked against the file."""
    path = Path(path)
    size = path.stat().st_size
    where = f"{path}: not a valid safetensors file"
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise RegistryError(f"{where}: {size} bytes is shorter than its header length field")
        n = struct.unpack("<Q", head)[0]
        if n > size - 8 or n > SAFETENSORS_MAX_HEADER:
            raise RegistryError(f"{where}: its header claims {n} bytes but the file holds {size - 8} after the "
                                "length field; the file is damaged or truncated")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise RegistryError(f"{where}: its header is not JSON") from None
    if not isinstance(header, dict):
        raise RegistryError(f"{where}: its header is not a JSON object")
    data = size - 8 - n
    weights = WeightShapes()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
            item = SAFETENSORS_DTYPE_BYTES[dtype]
            begin, end = int(begin), int(end)
        except (TypeError, KeyError, ValueError):
            raise RegistryError(f"{where}: tensor {name!r} has no valid dtype/shape/data_offsets") from None
        count = 1
        for d in shape:
            count *= d
        if any(d < 0 for d in shape) or not 0 <= begin <= end <= data or end - begin != count * item:
            raise RegistryError(f"{where}: tensor {name!r} of shape {shape} ({dtype}) needs {count * item} bytes, "
                                f"its offsets give {end - begin} at {begin} of the {data} bytes of data")
        weights.shapes[name] = tuple(shape)
    return weights


def check_folder_weights(folder: Path) -> WeightShapes:
    """Every *.safetensors file in a model folder checked; their tensors together."""
    weights = WeightShapes()
    for f in sorted(Path(folder).glob("*.safetensors")):
        weights.shapes.update(check_safetensors(f).shapes)
    return weights


# ---- config vs weights -------------------------------------------------------------------------------

_LAYER_INDEX = re.compile(r"(?:^|\.)(\d+)\.")


def check_config_fits(config, weights: WeightShapes, where: str) -> None:
    """Refuse a config that describes a model the weights cannot fill (checked on the meta device)."""
    import torch
    from transformers import AutoModelForCausalLM

    if not weights.shapes:
        return
    layers = getattr(config, "num_hidden_layers", None)
    found = {m.group(1) for name in weights.shapes if (m := _LAYER_INDEX.search(name))}
    if isinstance(layers, int) and layers > max(len(found), 1):
        raise RegistryError(f"{where}: the config declares {layers} layers but the weights hold {len(found)}; "
                            "the config does not belong to these weights")
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception as e:  # transformers raises many types for configs it cannot build
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise RegistryError(f"{where}: the config describes no model transformers can build ({first})") from None
    named = dict(model.named_parameters())
    for pname, p in named.items():
        shape = _file_shape(weights, pname)
        if shape is not None and shape != tuple(p.shape) and _numel(shape) != p.numel():
            raise RegistryError(f"{where}: the config makes {pname} of shape {list(p.shape)} but the weights hold "
                                f"{list(shape)}; the config does not belong to these weights")
    wanted = sum(p.numel() for p in named.values())
    have = weights.n_elements
    if wanted > MAX_PARAMETERS_BEYOND_WEIGHTS * have + PARAMETER_SLACK:
        dims = ", ".join(f"{k}={getattr(config, k)}" for k in ("vocab_size", "hidden_size", "intermediate_size",
                                                               "num_hidden_layers") if hasattr(config, k))
        raise RegistryError(f"{where}: the config ({dims}) describes {wanted:,} parameters but the weights hold "
                            f"{have:,}; the config does not belong to these weights")


def _file_shape(weights: WeightShapes, pname: str) -> tuple[int, ...] | None:
    """The shape of the file tensor named like ``pname`` (with or without the base model's prefix)."""
    if pname in weights.shapes:
        return weights.shapes[pname]
    head, _, rest = pname.partition(".")
    return weights.shapes.get(rest) if rest else None


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
