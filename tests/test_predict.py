"End-to-end, fault and CLI tests for `pssr.predict` (tiling, stacks, multi-frame, OME-Zarr, TTA, interruptions)."
import argparse, hashlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from torch import nn

from pssr.io import PssrInputError, read_image, write_tiff
from pssr.io import read_ome_zarr, write_ome_zarr
from pssr.config import ModelRecord
from pssr.cli import add_predict as add_cli
from pssr.predict import model_fn, predict_file, predict_tiled, predict_zarr, restore, tile_edges

torch.set_num_threads(1)


class TinySR(nn.Module):
    "Two 3x3 convs + pixel shuffle: receptive field 2 LR px each side."
    def __init__(self, scale=2, n_frames=1, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.scale, self.n_frames = scale, n_frames
        self.body = nn.Sequential(nn.Conv2d(n_frames, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, scale * scale, 3, padding=1), nn.PixelShuffle(scale))
    def forward(self, x): return self.body(x)


class Interrupting(TinySR):
    "Raises `exc` on the `after`-th forward call (simulates Ctrl-C or a crash mid-way)."
    def __init__(self, after=2, exc=KeyboardInterrupt, **kw):
        super().__init__(**kw); self.calls, self.after, self.exc = 0, after, exc
    def forward(self, x):
        self.calls += 1
        if self.calls >= self.after: raise self.exc('interrupted by the test')
        return super().forward(x)


def rng_image(shape, seed=0):
    from scipy.ndimage import gaussian_filter
    return gaussian_filter(np.random.default_rng(seed).random(shape), 1.5).astype(np.float32) * 1000


def tree_hash(path: Path) -> str:
    "sha256 over every file (name + bytes) under `path` (or of the file itself)."
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob('*') if p.is_file()) if path.is_dir() else [path]
    for f in files: h.update(str(f.relative_to(path.parent)).encode()); h.update(f.read_bytes())
    return h.hexdigest()


# --- tiling ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('shape,tile,overlap,bs', [((100, 120), 48, 16, 3), ((70, 33), 32, 8, 1), ((64, 200), 64, 32, 5)])
def test_tiled_equals_whole(shape, tile, overlap, bs):
    net = TinySR(scale=3).eval()
    fn = model_fn(net)
    x = rng_image(shape) / 1000
    whole = predict_tiled(fn, x, 3, overlap=overlap)
    tiled = predict_tiled(fn, x, 3, tile=tile, overlap=overlap, bs=bs)
    assert tiled.shape == (shape[0] * 3, shape[1] * 3)
    assert np.abs(tiled - whole).max() < 1e-4


def test_restore_tiled_equals_whole_stack():
    net = TinySR().eval()
    x = rng_image((3, 90, 70))
    a = restore(net, x, tile=32, overlap=8, progress=False)
    b = restore(net, x, tile=512, overlap=8, progress=False)
    assert a.shape == (3, 180, 140) and a.dtype == np.float32
    assert np.abs(a - b).max() < 1e-4 * np.abs(b).max()


def test_no_seam_with_unet():
    "A real (random) U-Net sees far beyond a tile, so tiles disagree; blending must still leave no step at tile borders."
    pssr_unet = pytest.importorskip('pssr.models').pssr_unet
    torch.manual_seed(0)
    fn = model_fn(pssr_unet('resnet18', scale=4).eval())
    yy, xx = np.mgrid[:48, :128].astype(np.float32)
    smooth = (np.sin(xx / 23) * np.cos(yy / 31) + xx / 128 + 1) / 3
    def border_energy(y, edges):   # mean |d/dx| across tile-border columns / across all other columns
        g = np.abs(np.diff(y, axis=1)).mean(0)
        on = np.zeros(len(g), bool); on[[e - 1 for e in edges]] = True
        return g[on].mean() / g[~on].mean()
    blended = predict_tiled(fn, smooth, 4, tile=64, overlap=16)
    hard = predict_tiled(fn, smooth, 4, tile=64, overlap=0)
    assert blended.shape == hard.shape == (192, 512)
    assert border_energy(blended, tile_edges(128, 64, 16, 4)) < 1.5   # no rougher than elsewhere, up to noise
    assert border_energy(hard, tile_edges(128, 64, 0, 4)) > 3          # the check sees seams when they exist


def test_device_fallback_and_channels_last():
    x = rng_image((40, 48))
    ref = restore(TinySR(), x, tile=32, overlap=8, device='cpu', progress=False)
    np.testing.assert_allclose(restore(TinySR(), x, tile=32, overlap=8, channels_last=True, progress=False), ref, rtol=1e-5, atol=1e-3)
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match='CUDA'):
            y = restore(TinySR(), x, tile=32, overlap=8, device='cuda', progress=False)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-3)


def test_tile_not_larger_than_overlap():
    with pytest.raises(PssrInputError, match='not larger than the overlap'):
        restore(TinySR(), rng_image((64, 64)), tile=16, overlap=32, progress=False)


# --- stacks and multi-frame models -------------------------------------------------------------------------------

def test_stack_and_multiframe_shapes():
    x = rng_image((7, 40, 48))
    assert restore(TinySR(scale=4), x, tile=32, overlap=8, progress=False).shape == (7, 160, 192)
    assert restore(TinySR(scale=2, n_frames=5), x, tile=32, overlap=8, progress=False).shape == (7, 80, 96)
    assert restore(TinySR(scale=2), x[0], tile=32, overlap=8, progress=False).shape == (80, 96)


def test_multiframe_uses_reflected_window():
    "With a model that copies a single input channel we can see which frame went where."
    class Pick(nn.Module):
        def __init__(self, c): super().__init__(); self.c, self.scale, self.n_frames, self.w = c, 1, 5, nn.Parameter(torch.ones(1))
        def forward(self, x): return x[:, self.c:self.c + 1] * self.w
    x = np.stack([np.full((32, 32), i, np.float32) for i in range(4)])
    first = restore(Pick(0), x, tile=32, overlap=0, progress=False)[:, 0, 0]   # frame i-2, reflected
    last = restore(Pick(4), x, tile=32, overlap=0, progress=False)[:, 0, 0]    # frame i+2, reflected
    np.testing.assert_allclose(first, [2, 1, 0, 1], atol=1e-3)
    np.testing.assert_allclose(last, [2, 3, 2, 1], atol=1e-3)


def test_bad_inputs(tmp_path):
    with pytest.raises(PssrInputError, match='5 consecutive frames'):
        restore(TinySR(n_frames=5), rng_image((64, 64)), progress=False)
    with pytest.raises(PssrInputError, match='NaN'):
        x = rng_image((64, 64)); x[3, 3] = np.nan
        restore(TinySR(), x, progress=False)
    with pytest.raises(PssrInputError, match='input not found'):
        predict_file(TinySR(), tmp_path / 'missing.tif', tmp_path / 'out')
    with pytest.raises(PssrInputError, match='model file not found'):
        restore(tmp_path / 'nomodel.pth', rng_image((64, 64)))
    write_tiff(tmp_path / 'one.tif', rng_image((64, 64)))
    with pytest.raises(PssrInputError, match='single 2D image') as e:
        predict_file(TinySR(n_frames=5), tmp_path / 'one.tif', tmp_path / 'out')
    assert 'one.tif' in str(e.value) and '\n' not in str(e.value)
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())


# --- files, metadata, TTA ----------------------------------------------------------------------------------------

def test_predict_file_metadata_and_tta(tmp_path):
    src = tmp_path / 'cells.tif'
    x = rng_image((2, 48, 40))
    write_tiff(src, x.astype(np.uint16), pixel_size=0.1, axes='TYX')
    net = TinySR(scale=2); net.record = ModelRecord(None, package={'name': 'tiny-test', 'scale': 2, 'n_frames': 1})
    out = predict_file(net, src, tmp_path / 'out', tile=32, overlap=8, tta=True, progress=False)
    assert out == tmp_path / 'out' / 'cells_pssr.tif'
    y, meta = read_image(out)
    std, _ = read_image(tmp_path / 'out' / 'cells_pssr_std.tif')
    assert y.shape == std.shape == (2, 96, 80) and meta.axes == 'TYX'
    assert abs(meta.pixel_size - 0.05) < 1e-6
    assert (std >= 0).all() and std.max() > 0
    with tifffile.TiffFile(out) as tf: assert 'tiny-test' in tf.imagej_metadata.get('Info', '')
    # prediction is in the input's units (uint16 counts around the input's mean), not normalised [0, 1]
    assert abs(float(y.mean()) - float(x.mean())) < 0.5 * float(x.std()) + 0.5 * float(x.mean())


def test_tta_equivariant_model_has_zero_std():
    class Up(nn.Module):
        def __init__(self): super().__init__(); self.scale, self.n_frames, self.w = 2, 1, nn.Parameter(torch.ones(1))
        def forward(self, x): return nn.functional.interpolate(x, scale_factor=2, mode='nearest') * self.w
    x = rng_image((48, 40))
    mean, std = restore(Up(), x, tile=32, overlap=8, tta=True, progress=False)
    assert np.abs(std).max() < 1e-3 * x.max()
    np.testing.assert_allclose(mean[::2, ::2], x, rtol=1e-4, atol=1e-2)


# --- OME-Zarr ----------------------------------------------------------------------------------------------------

def test_predict_zarr_matches_restore(tmp_path):
    x = rng_image((2, 90, 70))
    src = write_ome_zarr(tmp_path / 'v.zarr', x, pixel_size=0.04, chunks=(1, 32, 32), axes='TYX')
    net = TinySR(scale=2)
    out = predict_file(net, src, tmp_path / 'out', tile=32, overlap=8, progress=False)
    assert out.name == 'v_pssr.zarr'
    y, meta = read_ome_zarr(out)
    assert y.shape == (2, 180, 140) and meta.axes == 'TYX' and abs(meta.pixel_size - 0.02) < 1e-9
    ref = restore(net, x, tile=32, overlap=8, progress=False)
    assert np.abs(np.asarray(y[:]) - ref).max() < 1e-4 * np.abs(ref).max()
    # multi-frame model through zarr, with a block smaller than the image
    out5 = predict_zarr(TinySR(scale=2, n_frames=5), src, tmp_path / 'out5', tile=32, overlap=8, block=32, progress=False)
    ref5 = restore(TinySR(scale=2, n_frames=5), x, tile=32, overlap=8, progress=False)
    assert np.abs(read_ome_zarr(out5)[0][:] - ref5).max() < 1e-4 * np.abs(ref5).max()


def test_predict_zarr_tta_writes_std(tmp_path):
    src = write_ome_zarr(tmp_path / 'v.zarr', rng_image((40, 40)), pixel_size=0.04)
    predict_zarr(TinySR(scale=2), src, tmp_path, tile=32, overlap=8, tta=True, progress=False)
    std, meta = read_ome_zarr(tmp_path / 'v_pssr_std.zarr')
    assert std.shape == (80, 80) and float(np.asarray(std[:]).min()) >= 0 and abs(meta.pixel_size - 0.02) < 1e-9


# --- interruptions never leave partial outputs and never touch the input -----------------------------------------

@pytest.mark.parametrize('kind', ['tif', 'zarr'])
@pytest.mark.parametrize('exc', [KeyboardInterrupt, RuntimeError])
def test_interrupted_prediction_leaves_nothing(tmp_path, kind, exc):
    x = rng_image((3, 64, 64))
    src = (write_tiff(tmp_path / 'in.tif', x, pixel_size=0.1) if kind == 'tif'
           else write_ome_zarr(tmp_path / 'in.zarr', x, pixel_size=0.1, chunks=(1, 32, 32)))
    before = tree_hash(src)
    out = tmp_path / 'out'
    with pytest.raises(exc):
        predict_file(Interrupting(after=3, exc=exc), src, out, tile=32, overlap=8, bs=1, tta=True, progress=False)
    assert tree_hash(src) == before
    assert sorted(p.name for p in out.iterdir()) == []            # no output, no temp file/folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.' + kind, 'out']


def test_previous_output_is_kept_when_a_rerun_fails(tmp_path):
    src = write_tiff(tmp_path / 'in.tif', rng_image((40, 40)))
    out = predict_file(TinySR(), src, tmp_path, tile=32, overlap=8, progress=False)
    before = tree_hash(out)
    with pytest.raises(KeyboardInterrupt):
        predict_file(Interrupting(after=1), src, tmp_path, tile=32, overlap=8, progress=False)
    assert tree_hash(out) == before


# --- CLI -----------------------------------------------------------------------------------------------------------

def cli(argv):
    p = argparse.ArgumentParser(prog='pssr'); add_cli(p.add_subparsers())
    args = p.parse_args(argv)
    return args.func(args)


def test_cli_predict(tmp_path, capsys):
    save_model = pytest.importorskip('pssr.learner').save_model
    pssr_unet = pytest.importorskip('pssr.models').pssr_unet
    model = save_model(pssr_unet('resnet18', scale=2), tmp_path / 'models' / 'tiny')
    write_tiff(tmp_path / 'a.tif', rng_image((40, 48)), pixel_size=0.2)
    write_ome_zarr(tmp_path / 'b.zarr', rng_image((2, 40, 40)), pixel_size=0.2)
    assert cli(['predict', str(model), str(tmp_path / 'a.tif'), str(tmp_path / 'b.zarr'), '-o', str(tmp_path / 'o'),
                '--tile', '64', '--overlap', '8', '--bs', '2', '--device', 'cpu', '-q']) == 0
    y, meta = read_image(tmp_path / 'o' / 'a_pssr.tif')
    assert y.shape == (80, 96) and abs(meta.pixel_size - 0.1) < 1e-6
    with tifffile.TiffFile(tmp_path / 'o' / 'a_pssr.tif') as tf: assert 'tiny' in tf.imagej_metadata['Info']
    assert read_ome_zarr(tmp_path / 'o' / 'b_pssr.zarr')[0].shape == (2, 80, 80)
    assert 'a_pssr.tif' in capsys.readouterr().out


def test_cli_errors(tmp_path):
    with pytest.raises(PssrInputError, match='input not found'):
        cli(['predict', 'm.pth', str(tmp_path / 'nope.tif'), '-o', str(tmp_path)])
    write_tiff(tmp_path / 'a.tif', rng_image((40, 48)))
    with pytest.raises(PssrInputError, match='model file not found'):
        cli(['predict', str(tmp_path / 'm.pth'), str(tmp_path / 'a.tif'), '-o', str(tmp_path)])


def test_pssr_main_exit_code(tmp_path, capsys):
    main = pytest.importorskip('pssr.cli').main
    assert main(['predict', str(tmp_path / 'm.pth'), str(tmp_path / 'nope.tif'), '-o', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert 'nope.tif' in err and 'input not found' in err and len(err.strip().splitlines()) == 1


# --- a trained model does not depend on the tiling ---------------------------------------------------------------

def test_trained_model_tiling_agrees(tmp_path):
    "Default tiling, tiles of the training crop size and of 4x that size give the same PSNR within 0.05 dB."
    from pssr.data import synthetic, write_synthetic
    from pssr.crappify import EMCrappifier
    from pssr.evaluate import psnr_normalized
    from pssr.learner import TrainConfig, train
    write_synthetic(tmp_path/'hr', 'em', n=3, size=256, seed=0)
    cfg = TrainConfig(name='tiles', hr=str(tmp_path/'hr'), arch='lr_resnet', scale=4, size=64, bs=4, epochs=3, lr=3e-3,
                      tiles_per_image=16, models_dir=str(tmp_path/'m'))
    train(cfg)
    model = tmp_path/'m'/'tiles.pth'
    gt = synthetic('em', n=1, size=512, seed=7)[0]
    lr = EMCrappifier(4)(gt, 0)
    train_lr = cfg.size // cfg.scale  # 16 LR px
    scores = {t: psnr_normalized(gt, restore(model, lr, tile=t, progress=False)) for t in (None, train_lr, 4 * train_lr)}
    assert max(scores.values()) - min(scores.values()) <= 0.05, scores


# --- big data: lazy TIFF, memory budget, output types, pyramids ---------------------------------------------------

@pytest.mark.parametrize('shape,block', [((90, 110), None), ((3, 150, 170), 64)])
def test_lazy_tiff_equals_in_memory(tmp_path, shape, block):
    "A TIFF read strip by strip into a tiled BigTIFF gives the in-memory result (one block: exactly; several: within 1e-4)."
    from pssr.predict import predict_lazy, output_path
    from pssr.io import open_tiff_lazy
    net = TinySR(scale=2)
    x = (rng_image(shape) + 100).astype(np.uint16)
    write_tiff(tmp_path / 'in.tif', x, pixel_size=0.1)
    ref = predict_file(net, tmp_path / 'in.tif', tmp_path / 'mem', tile=48, overlap=8, progress=False, lazy=False)
    if block is None:
        lazy = predict_file(net, tmp_path / 'in.tif', tmp_path / 'lazy', tile=48, overlap=8, progress=False, lazy=True)
    else:
        arr, meta = open_tiff_lazy(tmp_path / 'in.tif')
        lazy = predict_lazy(net, arr, meta, output_path(tmp_path / 'in.tif', tmp_path / 'lazy'), 48, 8, block=block, progress=False)
    a, ma = read_image(ref); b, mb = read_image(lazy)
    with tifffile.TiffFile(lazy) as tf: assert tf.is_bigtiff and tf.pages[0].is_tiled
    assert a.shape == b.shape and abs(mb.pixel_size - 0.05) < 1e-6
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * float(np.abs(a).max()) if block else 1e-5 * float(np.abs(a).max()))
    assert not [p for p in (tmp_path / 'lazy').iterdir() if p.name.startswith('.')]  # no scratch left


def test_large_tiff_goes_lazy_under_a_small_budget(tmp_path):
    "With a budget of 8x less than the output, predict_file streams (tiled BigTIFF) instead of holding the output."
    x = rng_image((64, 64))
    write_tiff(tmp_path / 'in.tif', x)
    out = predict_file(TinySR(scale=2), tmp_path / 'in.tif', tmp_path / 'o', tile=32, overlap=8, progress=False,
                       max_memory=8 * 64 * 64 * 4 * 4 - 1)
    with tifffile.TiffFile(out) as tf: assert tf.pages[0].is_tiled


@pytest.mark.parametrize('dtype', ['uint16', 'uint8'])
def test_cli_dtype_round_trip(tmp_path, dtype):
    "--dtype writes integer pixels that map back to the float32 output within half a quantisation step."
    from pssr.io import from_dtype, to_dtype
    save_model = pytest.importorskip('pssr.learner').save_model
    pssr_unet = pytest.importorskip('pssr.models').pssr_unet
    model = save_model(pssr_unet('resnet18', scale=2), tmp_path / 'm' / 'tiny')
    x = (rng_image((40, 48)) * 20).astype(np.uint16)
    write_tiff(tmp_path / 'a.tif', x, pixel_size=0.2)
    args = ['predict', str(model), str(tmp_path / 'a.tif'), '--tile', '64', '--overlap', '8', '--device', 'cpu', '-q']
    assert cli(args + ['-o', str(tmp_path / 'f')]) == 0
    assert cli(args + ['-o', str(tmp_path / 'i'), '--dtype', dtype, '--max-memory', '1G']) == 0
    f, _ = read_image(tmp_path / 'f' / 'a_pssr.tif')
    with tifffile.TiffFile(tmp_path / 'i' / 'a_pssr.tif') as tf:
        q = tf.asarray(); info = tf.imagej_metadata['Info']
    assert q.dtype == np.dtype(dtype) and f'dtype={dtype}' in info
    vr = (0.0, 65535.0)
    np.testing.assert_array_equal(q, to_dtype(f, dtype, vr))
    step = 65535.0 / np.iinfo(dtype).max
    inside = (f >= 0) & (f <= 65535)
    assert np.abs(from_dtype(q, dtype, vr) - f)[inside].max() <= step / 2 + 1e-3


def test_zarr_pyramid_levels_and_pixel_sizes(tmp_path):
    "predict_zarr writes an NGFF multiscale pyramid (ome-zarr): levels halve XY, each with its pixel size; it reads back."
    import zarr
    write_ome_zarr(tmp_path / 'in.zarr', rng_image((2, 256, 320)), pixel_size=0.2, chunks=(1, 64, 64))
    out = predict_zarr(TinySR(scale=2), tmp_path / 'in.zarr', tmp_path / 'o', tile=64, overlap=8, progress=False)
    g = zarr.open_group(str(out), mode='r')
    ds = dict(g.attrs)['multiscales'][0]['datasets']
    shapes = [g[d['path']].shape for d in ds]
    sizes = [d['coordinateTransformations'][0]['scale'] for d in ds]
    assert shapes == [(2, 512, 640), (2, 256, 320)]
    np.testing.assert_allclose(sizes, [[1, 0.1, 0.1], [1, 0.2, 0.2]])
    arr, meta = read_ome_zarr(out)
    assert arr.shape == (2, 512, 640) and abs(meta.pixel_size - 0.1) < 1e-9
    ref = restore(TinySR(scale=2), rng_image((2, 256, 320)), tile=64, overlap=8, progress=False)
    np.testing.assert_allclose(np.asarray(arr[:]), ref, atol=1e-3)


def test_max_memory_option(tmp_path):
    "--max-memory takes sizes with units; nonsense is a one-line argparse error."
    from pssr.predict import MAX_MEMORY
    p = argparse.ArgumentParser(prog='pssr'); add_cli(p.add_subparsers())
    assert (p.parse_args(['predict', 'm', 'a.tif', '-o', 'o']).max_memory or MAX_MEMORY) == MAX_MEMORY == 2 * 2**30  # None: MAX_MEMORY
    assert p.parse_args(['predict', 'm', 'a.tif', '-o', 'o', '--max-memory', '512M']).max_memory == 512 * 2**20
    with pytest.raises(SystemExit): p.parse_args(['predict', 'm', 'a.tif', '-o', 'o', '--max-memory', 'lots'])
