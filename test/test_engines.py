"""Inference engines (hopadiff.engines): ONNX Runtime's denoising step equals eager PyTorch on
several batch sizes and lengths, cold and warm-started; the export is cached by content, a
corrupt cached file is rebuilt, a changed checkpoint never reuses a stale export; the node's
configure reports the engine and a second configure loads the cached export."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model_config, tiny_node_params

from hopadiff.engines import decoder_key, providers_for
from hopadiff.model import HopaDIFF

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def predict_both(model, cache, shapes, log, **kwargs):
    """Eager and onnxruntime predictions of ``model`` for each (B, W) in ``shapes``."""
    g = torch.Generator().manual_seed(0)
    inputs = [(torch.randn(B, 16, W, generator=g), torch.randn(B, 16, W, generator=g)) for B, W in shapes]
    model.set_engine("eager")
    eager = [model.predict(h, p, generator=torch.Generator().manual_seed(1), **kwargs) for h, p in inputs]
    model.set_engine("onnxruntime", cache_dir=cache, log=log)
    ort = [model.predict(h, p, generator=torch.Generator().manual_seed(1), **kwargs) for h, p in inputs]
    return eager, ort


@pytest.mark.parametrize(
    "fusion, injection",
    [
        # the full-decoder path is also exported (and probed against eager) by the node test below
        pytest.param("mean", "qk", marks=pytest.mark.slow),
        ("partial", "qk+residual"),  # fusion partial: only the partial decoder runs (a subset of the weights)
    ],
    ids=["both decoders, qk", "partial decoder subset, qk+residual"],
)
def test_onnxruntime_equals_eager(fusion, injection, tmp_path):
    lines = []
    torch.manual_seed(0)
    model = HopaDIFF(tiny_model_config(fusion=fusion, condition_injection=injection)).eval()
    shapes = [(1, 9), (3, 40), (5, 130)]
    eager, ort = predict_both(model, tmp_path, shapes, lines.append)
    assert model.engine_report == "onnxruntime (CPUExecutionProvider)", lines
    for (B, W), a, b in zip(shapes, eager, ort, strict=True):
        assert a.shape == b.shape == (B, 5, W)
        assert (a - b).abs().max() < 1e-4, (B, W)
    # Warm-started streaming windows: the last steps from a previous window's estimate.
    init = torch.full((3, model.num_branches, 5, 40), float("nan"))
    init[..., :32] = torch.rand(3, model.num_branches, 5, 32)
    eager, ort = predict_both(model, tmp_path, [(3, 40)], lines.append, init=init, init_steps=2)
    assert (eager[0] - ort[0]).abs().max() < 1e-4
    assert len(list(tmp_path.glob("*.onnx"))) == 1 and not lines  # exported once, loaded the second time

    # A truncated / corrupt file where the export belongs is detected, exported again, and used.
    (path,) = tmp_path.glob("*.onnx")
    path.write_bytes(b"\x08\x07 not an onnx graph")
    eager, ort = predict_both(model, tmp_path, shapes[1:2], lines.append)
    assert any("unusable" in line and "exporting again" in line for line in lines), lines
    assert (eager[0] - ort[0]).abs().max() < 1e-4 and model.engine_report.startswith("onnxruntime")
    assert path.stat().st_size > 1000 and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_the_export_is_keyed_by_content():
    """The cache key is the decoder's weights and configuration (plus versions): deterministic,
    and a fine-tuned checkpoint gets a new file, never the stale one."""
    model = HopaDIFF(tiny_model_config()).eval()
    key = decoder_key(model.decoder)
    assert decoder_key(model.decoder) == key
    changed = HopaDIFF(tiny_model_config()).eval()
    changed.load_state_dict(model.state_dict())
    assert decoder_key(changed.decoder) == key  # same weights, another object: the same file
    with torch.no_grad():
        changed.decoder.conv_out.weight.add_(1e-3)
    assert decoder_key(changed.decoder) != key
    other = HopaDIFF(tiny_model_config(condition_injection="qk+residual")).eval()
    assert decoder_key(other.decoder) != key  # another configuration


def test_a_gpu_without_an_onnxruntime_gpu_provider_says_so_in_one_line():
    lines = []
    providers = providers_for(torch.device("cuda"), lines.append)
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    assert providers == ["CPUExecutionProvider"]
    assert len(lines) == 1 and "no CUDA or TensorRT provider" in lines[0] and "onnxruntime-gpu" in lines[0]


def test_the_node_pipeline_reports_the_engine_and_reuses_its_export(node_assets, tmp_path):
    """RhasPipeline.from_checkpoint (what rhas_node's configure runs) with inference_engine
    onnxruntime: the export lands beside the checkpoint, the log names engine and provider, a
    second configure loads the file (no new export)."""
    import shutil

    from rhas_ros.core.pipeline import RhasPipeline
    from rhas_ros.core.settings import Settings

    checkpoint = shutil.copy(node_assets / "model.pt", tmp_path / "model.pt")
    params = tiny_node_params(checkpoint, node_assets / "clip_model", inference_engine="onnxruntime")
    lines = []
    RhasPipeline.from_checkpoint(Settings(**params), lines.append)
    assert "inference engine: onnxruntime (CPUExecutionProvider)" in lines
    (export,) = (tmp_path / "model.pt.engines").glob("decoder-step-*.onnx")
    stamp = export.stat().st_mtime_ns
    again = []
    RhasPipeline.from_checkpoint(Settings(**params), again.append)
    assert "inference engine: onnxruntime (CPUExecutionProvider)" in again
    assert export.stat().st_mtime_ns == stamp and len(list((tmp_path / "model.pt.engines").iterdir())) == 1
