"""The ctypes declarations against include/qwen.h: struct layouts (compiled with the C compiler) and every
function prototype of the header (parsed). Skipped where the header or a compiler is not available."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from qwen import _lib

from conftest import REPO

HEADER = Path(os.environ.get("QWEN_HEADER", REPO / "include" / "qwen.h"))
needs_header = pytest.mark.skipif(not HEADER.is_file(), reason=f"{HEADER} not found")

STRUCTS = {
    "qwen_model_params": _lib.ModelParams,
    "qwen_model_details": _lib.ModelDetails,
    "qwen_context_params": _lib.ContextParams,
    "qwen_sampling_params": _lib.SamplingParams,
    "qwen_chat_message": _lib.ChatMessage,
    "qwen_chat_options": _lib.ChatOptions,
    "qwen_audio_params": _lib.AudioParams,
    "qwen_image_params": _lib.ImageParams,
    "qwen_quantize_params": _lib.QuantizeParams,
    "qwen_box": _lib.Box,
}


@needs_header
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_struct_layouts_match_the_header(tmp_path: Path) -> None:
    lines = ["#include <stddef.h>", "#include <stdio.h>", f'#include "{HEADER}"', "int main(void) {"]
    header = HEADER.read_text()
    structs = {k: v for k, v in STRUCTS.items() if re.search(r"\}\s*" + k + r"\s*;", header)}
    assert "qwen_model_details" in structs
    for cname, cls in structs.items():
        lines.append(f'printf("{cname} %zu %zu\\n", sizeof({cname}), _Alignof({cname}));')
        for field, _ in cls._fields_:
            lines.append(f'printf("{cname}.{field} %zu %zu\\n", offsetof({cname}, {field}), sizeof((({cname} *)0)->{field}));')
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-std=c11", "-o", str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    got: Dict[str, Tuple[int, int]] = {}
    for line in out:
        if line:
            name, a, b = line.split()
            got[name] = (int(a), int(b))
    for cname, cls in structs.items():
        assert got[cname] == (ctypes.sizeof(cls), ctypes.alignment(cls)), cname
        for field, ftype in cls._fields_:
            descriptor = getattr(cls, field)
            assert got[f"{cname}.{field}"] == (descriptor.offset, ctypes.sizeof(ftype)), f"{cname}.{field}"


def _prototypes(text: str) -> Dict[str, Tuple[str, List[str]]]:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
    found: Dict[str, Tuple[str, List[str]]] = {}
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(qwen_\w+)\s*\(([^;{)]*)\)\s*;", text):
        ret, name, args = m.group(1), m.group(2), m.group(3)
        ret = " ".join(ret.split())
        if ret.startswith("typedef"):
            continue
        params = [] if args.strip() in ("", "void") else [" ".join(a.split()) for a in args.split(",")]
        found[name] = (ret, params)
    return found


def _ctype(decl: str, is_param: bool) -> Any:
    """The ctypes type a C declaration maps to (parameter names dropped)."""
    d = decl.replace("const", " ")
    d = re.sub(r"\s*\*\s*", " * ", d)
    words = d.split()
    if is_param and len(words) > 1 and words[-1] != "*" and re.match(r"^[a-z_]\w*$", words[-1]) and (
        words[-2] == "*" or words[-2] in BASE or words[-2].startswith("qwen_")
    ):
        words = words[:-1]  # the parameter name
    stars = words.count("*")
    base = " ".join(w for w in words if w != "*")
    if base == "char" and stars == 1:
        return ctypes.c_char_p
    if base == "char" and stars == 2:
        return ctypes.POINTER(ctypes.c_char_p)
    if base in OPAQUE or base == "void":
        if stars == 0:
            return None
        return ctypes.c_void_p if stars == 1 else ctypes.POINTER(ctypes.c_void_p)
    t = BASE[base]
    for _ in range(stars):
        t = ctypes.POINTER(t)
    return t


OPAQUE = {"qwen_model", "qwen_context", "qwen_image", "qwen_audio"}
BASE: Dict[str, Any] = {
    "int": ctypes.c_int, "double": ctypes.c_double, "int32_t": ctypes.c_int32, "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64,
    "uint8_t": ctypes.c_uint8, "float": ctypes.c_float, "qwen_token_callback": _lib.TOKEN_CALLBACK,
    "qwen_status": ctypes.c_int, "qwen_kv_type": ctypes.c_int,
    **{name: cls for name, cls in STRUCTS.items()},
}


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if a is None or b is None:
        return False
    if hasattr(a, "_type_") and hasattr(b, "_type_") and issubclass(a, ctypes._Pointer) and issubclass(b, ctypes._Pointer):
        return _same(a._type_, b._type_)
    return ctypes.sizeof(a) == ctypes.sizeof(b) and a._type_ == b._type_ if hasattr(a, "_type_") and hasattr(b, "_type_") else False


@needs_header
def test_function_declarations_match_the_header() -> None:
    protos = _prototypes(HEADER.read_text())
    declared = {**_lib.REQUIRED, **_lib.OPTIONAL}
    assert len(protos) >= len(_lib.REQUIRED)
    unknown = sorted(set(protos) - set(declared))
    assert not unknown, f"functions of qwen.h the binding does not declare: {unknown}"
    missing = sorted(set(_lib.REQUIRED) - set(protos))
    assert not missing, f"declared as required but not in qwen.h: {missing}"
    for name, (ret, params) in protos.items():
        restype, argtypes = declared[name]
        assert _same(_ctype(ret, False), restype), f"{name}: result {ret!r} vs {restype}"
        assert len(params) == len(argtypes), f"{name}: {len(params)} parameters in qwen.h, {len(argtypes)} declared"
        for i, (p, t) in enumerate(zip(params, argtypes)):
            assert _same(_ctype(p, True), t), f"{name} parameter {i}: {p!r} vs {t}"


@needs_header
def test_optional_api_status() -> None:
    """Reports which functions of the vision/audio API the header has (informational; never fails)."""
    protos = _prototypes(HEADER.read_text())
    pending = [n for n in _lib.OPTIONAL if n not in protos]
    if pending:
        pytest.skip("not in qwen.h yet: " + ", ".join(pending))
