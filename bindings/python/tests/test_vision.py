"""Images (Qwen2-VL): decoding, embeddings, prompts and chats with images, against transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

import qwen

from conftest import FIXTURES, TINY_Q8

VISION = FIXTURES / "vision"
IMAGES = VISION / "images"
RGB = IMAGES / "rgb_333x215.png"

pytestmark = pytest.mark.skipif(not qwen.has_vision(), reason="the library has no vision API")


def refs() -> Dict[str, Any]:
    return json.loads((VISION / "refs" / "qwen2vl.json").read_text())


def ref_rows(image: str) -> np.ndarray:
    entry = refs()["embeddings"][image]
    return np.fromfile(VISION / "refs" / entry["file"], dtype=np.float32).reshape(entry["shape"])


def ref_case(name: str) -> Dict[str, Any]:
    case = dict(refs()["cases"][name])
    rows = np.fromfile(VISION / "refs" / case["logits_file"], dtype=np.float32).reshape(case["logits_shape"])
    case["last_logits"] = rows[-1]
    return case


@pytest.fixture(scope="module")
def vl_model() -> Iterator[qwen.Model]:
    with qwen.Model(VISION / "qwen2vl-hf") as m:
        yield m


@pytest.fixture
def vl_ctx(vl_model: qwen.Model) -> Iterator[qwen.Context]:
    with vl_model.context(n_ctx=1024, kv_type="f32", threads=2) as c:
        yield c


def test_image_properties(vl_model: qwen.Model) -> None:
    assert vl_model.has_vision
    with qwen.Model(TINY_Q8) as text_model:
        assert not text_model.has_vision
    with qwen.Image(RGB) as img:
        assert (img.width, img.height) == (333, 215) and "333x215" in repr(img)
        assert img.n_tokens(vl_model) == 96
        img.set_pixel_bounds(0, 56 * 56)
        assert img.n_tokens(vl_model) < 96
    with qwen.Image(IMAGES / "gray_28x28.png") as img:
        assert img.n_tokens(vl_model) == 4  # below min_pixels: resized up to 56x56
    with qwen.Image(IMAGES / "exif6_200x120.jpg") as img:
        assert (img.width, img.height) == (120, 200)  # EXIF orientation 6 applied
    with qwen.Image(IMAGES / "exif6_200x120.jpg", apply_orientation=False) as img:
        assert (img.width, img.height) == (200, 120)


@pytest.mark.parametrize("name", ["rgb_333x215.png", "rgba_250x190.png", "photo_640x427.jpg", "gray_28x28.png"])
def test_embeddings_match_transformers(vl_ctx: qwen.Context, name: str) -> None:
    rows = vl_ctx.embed_image(IMAGES / name)
    expected = ref_rows(name)
    assert rows.dtype == np.float32 and rows.shape == expected.shape
    assert np.max(np.abs(rows - expected)) < 1e-3


def test_image_sources_agree(vl_ctx: qwen.Context) -> None:
    PIL = pytest.importorskip("PIL.Image")
    from_file = vl_ctx.embed_image(qwen.Image(RGB))
    pil = PIL.open(RGB)
    array = np.asarray(pil.convert("RGB"))
    for source in [RGB.read_bytes(), pil, array, qwen.Image.from_array(array), qwen.Image.from_bytes(RGB.read_bytes())]:
        assert np.max(np.abs(vl_ctx.embed_image(source) - from_file)) < 1e-5
    gray = np.asarray(PIL.open(IMAGES / "gray_28x28.png").convert("L"))
    assert np.max(np.abs(vl_ctx.embed_image(gray) - ref_rows("gray_28x28.png"))) < 1e-3


def test_image_errors(tmp_path: Path, vl_ctx: qwen.Context) -> None:
    with pytest.raises(qwen.QwenError) as info:
        qwen.Image(tmp_path / "missing.png")
    assert info.value.status_name == "QWEN_ERR_IO"
    for bad in ["bad_garbage.png", "bad_truncated.jpg", "bad_empty.png"]:
        with pytest.raises(qwen.FormatError):
            qwen.Image(IMAGES / bad)
    with pytest.raises(qwen.UnsupportedError):
        qwen.Image(IMAGES / "bad_huge.png")
    with pytest.raises(qwen.UnsupportedError):
        qwen.Image(RGB, decode_limit=1000)
    with pytest.raises(qwen.FormatError):
        qwen.Image(b"not an image")
    with pytest.raises(TypeError):
        qwen.Image(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(TypeError):
        qwen.Image(42)
    with pytest.raises(ValueError):
        qwen.Image(RGB, min_pixels=-1)
    with qwen.Model(TINY_Q8) as text_model, text_model.context(n_ctx=256) as c:
        with pytest.raises(qwen.UnsupportedError):
            c.embed_image(RGB)
        with pytest.raises(qwen.UnsupportedError):
            c.chat([("user", "<image>hi")], images=[RGB])
    img = qwen.Image(RGB)
    img.close()
    img.close()
    with pytest.raises(ValueError):
        vl_ctx.embed_image(img)


def test_prompt_matches_transformers(vl_ctx: qwen.Context, vl_model: qwen.Model) -> None:
    case = ref_case("one")
    logits = vl_ctx.eval_prompt(case["prompt"], images=[IMAGES / i for i in case["images"]])
    assert vl_ctx.n_past == len(case["input_ids"])
    assert np.max(np.abs(logits - case["last_logits"])) < 1e-3
    vl_ctx.generate(16, temperature=0)
    assert vl_ctx.last_tokens == case["greedy"]


def test_prompt_with_two_images(vl_ctx: qwen.Context) -> None:
    case = ref_case("two")
    images = [qwen.Image(IMAGES / i) for i in case["images"]]
    logits = vl_ctx.eval_prompt(case["prompt"], images=images)
    assert vl_ctx.n_past == len(case["input_ids"])
    assert np.max(np.abs(logits - case["last_logits"])) < 1e-3
    vl_ctx.reset()
    with pytest.raises(qwen.InvalidArgumentError):  # two placeholders, one image
        vl_ctx.eval_prompt(case["prompt"], images=images[:1])
    with pytest.raises(TypeError):
        vl_ctx.eval_prompt(case["prompt"], images=images[0])  # type: ignore[arg-type]


def _chat() -> List[Dict[str, str]]:
    return [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "<image>Describe this image."}]


def test_chat_with_an_image_matches_transformers(vl_ctx: qwen.Context, vl_model: qwen.Model) -> None:
    case = ref_case("one")
    greedy_text = vl_model.detokenize(case["greedy"])
    assert vl_ctx.chat(_chat(), images=[RGB], max_tokens=16, temperature=0) == greedy_text
    assert vl_ctx.last_tokens == case["greedy"]
    # without a marker, the image goes to the start of the first user message
    no_marker = [_chat()[0], {"role": "user", "content": "Describe this image."}]
    vl_ctx.reset()
    assert "".join(vl_ctx.chat(no_marker, images=[qwen.Image(RGB)], max_tokens=16, temperature=0, stream=True)) == greedy_text


def test_multi_turn_chat_with_an_image(vl_ctx: qwen.Context, vl_model: qwen.Model) -> None:
    history = _chat()
    reply = vl_ctx.chat(history, images=[RGB], max_tokens=8, temperature=0)
    first = vl_ctx.n_evaluated
    history += [{"role": "assistant", "content": reply}, {"role": "user", "content": "And the colors?"}]
    vl_ctx.chat(history, images=[RGB], max_tokens=4, temperature=0)
    new_part = len(vl_model.tokenize("<|im_end|>\n<|im_start|>user\nAnd the colors?<|im_end|>\n<|im_start|>assistant\n",
                                     special=True))
    assert vl_ctx.n_evaluated - first - len(vl_ctx.last_tokens) <= new_part + 2  # the image is not evaluated again


def test_cli_with_an_image() -> None:
    case = ref_case("one")
    r = subprocess.run([sys.executable, "-m", "qwen", "-m", str(VISION / "qwen2vl-hf"), "-s", "You are a helpful assistant.",
                        "-p", "Describe this image.", "--image", str(RGB), "-n", "16", "--temp", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with qwen.Model(VISION / "qwen2vl-hf") as m:
        assert r.stdout == m.detokenize(case["greedy"]) + "\n"


def test_projector_for_a_gguf() -> None:
    with qwen.Model(VISION / "qwen2vl-f32.gguf") as plain:
        assert not plain.has_vision
    with qwen.Model(VISION / "qwen2vl-f32.gguf", mmproj=VISION / "mmproj-qwen2vl-f32.gguf") as m:
        assert m.has_vision
        with m.context(n_ctx=512) as c:
            rows = c.embed_image(RGB)
            assert rows.shape == (96, m.n_embd)
            assert np.max(np.abs(rows - ref_rows("rgb_333x215.png"))) < 5e-3
    with pytest.raises(qwen.QwenError):
        qwen.Model(VISION / "qwen2vl-f32.gguf", mmproj=VISION / "missing.gguf")


def test_qwen_vl_grounding_and_projector(tmp_path: Path) -> None:
    boxes = qwen.grounding_boxes("<ref>the dog</ref><box>(120,340),(560,910)</box> and <box>(1,2),(3,4)</box>", 640, 427)
    assert boxes == [qwen.GroundingBox(76, 145, 358, 388, "the dog"), qwen.GroundingBox(0, 0, 1, 1, None)]
    assert qwen.grounding_boxes("no boxes") == []
    fixtures = Path(FIXTURES)
    folder = fixtures / "qwen-vl" / "qwenvl-hf"
    qwen.quantize(folder, tmp_path / "text.gguf", "F16")
    qwen.export_projector(folder, tmp_path / "mmproj.gguf", "F16")
    with qwen.Model(tmp_path / "text.gguf") as model:
        model.load_projector(tmp_path / "mmproj.gguf")
        with qwen.Image.from_file(fixtures / "vision" / "images" / "rgb_333x215.png") as image:
            assert image.to_array().shape == (215, 333, 3)
            assert image.n_tokens(model) == 256
