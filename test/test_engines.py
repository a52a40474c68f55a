"""Inference engines (hopadiff.engines): ONNX Runtime's window (its two graphs: the window
encoder and the denoising step) equals eager PyTorch on several batch sizes, lengths and
visibility masks, cold and warm-started; the exports are cached by content, a corrupt cached
file is rebuilt, a changed checkpoint never reuses a stale export, a graph that does not export
stays eager with one line naming the operator; the node's configure reports the engine and a
second configure loads the cached exports."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tiny import tiny_model_config, tiny_node_params

from hopadiff.engines.ort import decoder_key, providers_for, window_key
from hopadiff.model import HopaDIFF

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def predict_both(model, cache, shapes, log, masked=False, **kwargs):
    """Eager and onnxruntime predictions of ``model`` for each (B, W) in ``shapes`` (``masked``:
    with a random visibility mask, the target unseen in about a third of the frames)."""
    g = torch.Generator().manual_seed(0)
    F = model.cfg.feature_dim
    inputs = [(torch.randn(B, F, W, generator=g), torch.randn(B, F, W, generator=g),
               torch.rand(B, W, generator=g) > 0.3 if masked else None) for B, W in shapes]  # fmt: skip
    model.set_engine("eager")
    eager = [model.predict(h, p, v, generator=torch.Generator().manual_seed(1), **kwargs) for h, p, v in inputs]
    model.set_engine("onnxruntime", cache_dir=cache, log=log)
    ort = [model.predict(h, p, v, generator=torch.Generator().manual_seed(1), **kwargs) for h, p, v in inputs]
    return eager, ort


@pytest.fixture(scope="module")
def shipped(node_assets, tmp_path_factory):
    """A checkpoint with the shipped decoder path (learned fusion: both branches' decoders; qk +
    residual condition) for node_assets' labels and tiny CLIP, and the log of its first configure
    with inference_engine onnxruntime, which found a corrupt file where its export belongs (a
    truncated copy, a disk error): -> (checkpoint, the first configure's log lines). The one
    export of this module's CI tests (both graphs; an export costs seconds of CPU)."""
    import shutil

    import hopadiff
    from rhas_ros.core.pipeline import RhasPipeline
    from rhas_ros.core.settings import Settings

    _, config, labels, _ = hopadiff.load_checkpoint(node_assets / "model.pt")
    # Two encoder layers and one decoder layer (node_assets' tiny model has 4 and 3): the graphs'
    # structure is the shipped one, the export (the module's CPU cost) about half as long.
    model_cfg = dataclasses.replace(
        config.model,
        fusion="learned",
        encoder=dataclasses.replace(config.model.encoder, num_layers=2, feature_layer_indices=[0, 1]),
        decoder=dataclasses.replace(config.model.decoder, condition_injection="qk+residual", num_layers=1),
    )
    config = dataclasses.replace(config, model=model_cfg)
    root = tmp_path_factory.mktemp("shipped")
    checkpoint = root / "model.pt"
    torch.manual_seed(0)
    model = HopaDIFF(model_cfg).eval()
    hopadiff.save_checkpoint(checkpoint, model, config, labels)
    corrupt = root / "model.pt.engines" / f"decoder-step-{decoder_key(model.decoder)}.onnx"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"\x08\x07 not an onnx graph")
    shutil.copytree(node_assets / "clip_model", root / "clip_model")
    lines = []
    RhasPipeline.from_checkpoint(
        Settings(**tiny_node_params(checkpoint, root / "clip_model", inference_engine="onnxruntime")), lines.append
    )
    return checkpoint, lines


def test_the_node_configure_reports_the_engine_rebuilds_a_corrupt_export_and_reuses_it(shipped):
    """RhasPipeline.from_checkpoint (what rhas_node's configure runs) with inference_engine
    onnxruntime: a corrupt cached file is detected and exported again beside the checkpoint, the
    log names engine and provider, a second configure loads the file (no new export)."""
    from rhas_ros.core.pipeline import RhasPipeline
    from rhas_ros.core.settings import Settings

    checkpoint, lines = shipped
    assert any("unusable" in line and "exporting again" in line for line in lines), lines
    assert "inference engine: onnxruntime (CPUExecutionProvider)" in lines
    cache = checkpoint.parent / "model.pt.engines"
    exports = sorted(cache.iterdir())
    assert [p.name.split("-")[0] for p in exports] == ["decoder", "window"], exports
    assert all(p.stat().st_size > 1000 for p in exports)
    stamps = [p.stat().st_mtime_ns for p in exports]
    again = []
    params = tiny_node_params(checkpoint, checkpoint.parent / "clip_model", inference_engine="onnxruntime")
    RhasPipeline.from_checkpoint(Settings(**params), again.append)
    assert "inference engine: onnxruntime (CPUExecutionProvider)" in again
    assert not any("export" in line for line in again), again
    assert sorted(cache.iterdir()) == exports and [p.stat().st_mtime_ns for p in exports] == stamps


def test_onnxruntime_equals_eager_on_the_shipped_path(shipped):
    """Both decoders, qk + residual: batch sizes 1-5, lengths 2-130 (2: the shortest window),
    with and without a visibility mask, cold and warm-started. Two torch threads, so the step's
    second session (batches of WIDE_BATCH or more, torch's threads) runs the batch of 5."""
    import hopadiff
    from hopadiff.engines.ort import WIDE_BATCH

    checkpoint, _ = shipped
    cache = checkpoint.parent / "model.pt.engines"
    model = hopadiff.load_checkpoint(checkpoint)[0]
    lines = []
    shapes = [(1, 2), (1, 9), (3, 40), (5, 130)]
    assert shapes[-1][0] >= WIDE_BATCH > shapes[-2][0]
    C = model.cfg.num_classes
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        both = [predict_both(model, cache, shapes, lines.append, masked=masked) for masked in (False, True)]
    finally:
        torch.set_num_threads(threads)
    for masked, (eager, ort) in zip((False, True), both, strict=True):
        assert model.engine_report == "onnxruntime (CPUExecutionProvider)", lines
        for (B, W), a, b in zip(shapes, eager, ort, strict=True):
            assert a.shape == b.shape == (B, C, W)
            assert (a - b).abs().max() < 1e-4, (B, W, masked)
    # Warm-started streaming windows: the last steps from a previous window's estimate.
    init = torch.full((3, model.num_branches, C, 40), float("nan"))
    init[..., :32] = torch.rand(3, model.num_branches, C, 32)
    eager, ort = predict_both(model, cache, [(3, 40)], lines.append, masked=True, init=init, init_steps=2)
    assert (eager[0] - ort[0]).abs().max() < 1e-4
    assert not lines and len(list(cache.iterdir())) == 2  # the configure's exports, loaded


@torch.library.custom_op("rhas_test::twist", mutates_args=())
def twist(x: torch.Tensor) -> torch.Tensor:
    """A custom operator (a robot's own layer, say) that torch.export cannot trace: it has no
    fake (shape-only) implementation, so the export stops at it, before anything is written."""
    return x.clone()


class Twisted(torch.nn.Module):
    """``inner`` after ``twist`` of its input."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(twist(x))


def test_a_graph_that_does_not_export_names_the_operator_and_runs_eager(shipped):
    """The encoder's input passed through an operator the exporter cannot handle: the window
    encoder's export fails with one line naming it and runs eager; the denoising step stays on
    ONNX Runtime; the output equals eager; nothing is written for the failed graph."""
    import hopadiff

    checkpoint, _ = shipped
    cache = checkpoint.parent / "model.pt.engines"
    before = sorted(cache.iterdir())
    model = hopadiff.load_checkpoint(checkpoint)[0]
    model.encoder = Twisted(model.encoder)
    lines = []
    eager, ort = predict_both(model, cache, [(2, 20)], lines.append)
    assert len(lines) == 1, lines
    assert lines[0].startswith("inference_engine onnxruntime: the window encoder's export failed (")
    assert "rhas_test::twist" in lines[0] and lines[0].endswith("; the window encoder runs eager")
    assert model.engine_report == "onnxruntime (CPUExecutionProvider); the window encoder eager, see the log"
    assert (eager[0] - ort[0]).abs().max() < 1e-4
    assert sorted(cache.iterdir()) == before and not list(cache.glob(".*"))


@pytest.mark.slow
@pytest.mark.parametrize("injection", ["qk", "qk+residual"])
def test_onnxruntime_equals_eager_on_the_partial_decoder_subset(injection, tmp_path):
    """fusion partial: only the partial branch's decoder runs (a subset of the weights) and is
    exported; each injection."""
    lines = []
    torch.manual_seed(0)
    model = HopaDIFF(tiny_model_config(fusion="partial", condition_injection=injection)).eval()
    shapes = [(1, 9), (3, 40), (5, 130)]
    eager, ort = predict_both(model, tmp_path, shapes, lines.append)
    assert model.engine_report == "onnxruntime (CPUExecutionProvider)", lines
    for a, b in zip(eager, ort, strict=True):
        assert (a - b).abs().max() < 1e-4
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.onnx")) == ["decoder", "window"] and not lines


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
    # The window graph: keyed by the whole model (a retrained encoder or xLSTM is a new file).
    window = window_key(model)
    assert window_key(changed) != window and window_key(other) != window
    with torch.no_grad():
        changed.decoder.conv_out.weight.copy_(model.decoder.conv_out.weight)
        assert window_key(changed) == window
        changed.xlstm.branches[0].up.weight.add_(1e-3)
    assert window_key(changed) != window


def test_a_gpu_without_an_onnxruntime_gpu_provider_says_so_in_one_line():
    lines = []
    providers = providers_for(torch.device("cuda"), lines.append)
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    assert providers == ["CPUExecutionProvider"]
    assert len(lines) == 1 and "no CUDA or TensorRT provider" in lines[0] and "onnxruntime-gpu" in lines[0]


def test_compile_without_a_cpu_compiler_falls_back_to_eager_in_one_line(tmp_path):
    """A robot without g++ (inductor's C++ compiler set to a path that does not exist, its caches
    off so nothing compiled earlier is reused): configure's warm-up says so in one line and the
    model runs eagerly, with the eager output."""
    import torch._inductor.config as inductor

    torch.manual_seed(0)
    cfg = tiny_model_config(fusion="partial")
    cfg = dataclasses.replace(cfg, decoder=dataclasses.replace(cfg.decoder, num_layers=1))
    model = HopaDIFF(cfg).eval()
    h = torch.randn(1, 16, 20)
    want = model.predict(h, h, generator=torch.Generator().manual_seed(0))
    lines = []
    torch._dynamo.reset()
    with inductor.patch({"cpp.cxx": (str(tmp_path / "no-g++"),), "force_disable_caches": True}):
        model.set_engine("compile", cache_dir=tmp_path, log=lines.append)
        model.warm_up(20, (1,))
    torch._dynamo.reset()
    assert len(lines) == 1 and lines[0].startswith("inference_engine compile: compiling failed"), lines
    assert "No working C++ compiler" in lines[0], lines
    assert lines[0].endswith("; running eager") and model.engine_report == "eager (compile failed, see the log)"
    torch.testing.assert_close(model.predict(h, h, generator=torch.Generator().manual_seed(0)), want)
