"Fault cases and end-to-end checks of pssr.data: bad input gives a one-line PssrInputError, a fastai Learner consumes the DataLoaders."
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pssr.crappify import AdditiveGaussian, Compose, Downsample, EMCrappifier
from pssr.data import hr_dataloaders, pair_dataloaders, show_pairs, split_by_image, tile_corner, Tile
from pssr.phantoms import synthetic, synthetic_timelapse, write_synthetic
from pssr.io import PssrInputError, write_tiff

NOISELESS = Downsample(scale=4, method='area')


@pytest.fixture(scope='module')
def em():
    return synthetic('em', n=3, size=128, seed=1)


def write_pairs(root, n=3, size=128, scale=4, frames=1, hr_frames=None):
    "HR phantoms (or time-lapses) and their exact block means as LR, in root/lr and root/hr."
    lr_dir, hr_dir = root / 'lr', root / 'hr'
    lr_dir.mkdir(parents=True, exist_ok=True); hr_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        hr = synthetic('em', 1, size, seed=i)[0] if frames == 1 else synthetic_timelapse(frames, size, seed=i, kind='em')
        write_tiff(lr_dir / f'im{i}.tif', Downsample(scale=scale, method='area')(hr), axes='YX' if hr.ndim == 2 else 'TYX')
        hr_out = hr if hr_frames is None else hr[frames // 2]
        write_tiff(hr_dir / f'im{i}.tif', hr_out, axes='YX' if hr_out.ndim == 2 else 'TYX')
    return lr_dir, hr_dir


def corrs(x, y, scale=4):
    "Per-sample correlation of the LR centre frame with the block mean of HR."
    c = x.shape[1] // 2
    return [float(np.corrcoef(a.flatten(), b.flatten())[0, 1]) for a, b in zip(x[:, c].cpu(), F.avg_pool2d(y, scale)[:, 0].cpu())]


def assert_one_line(err, *words):
    msg = str(err.value)
    assert '\n' not in msg, msg
    for w in words: assert str(w) in msg, (w, msg)


# ---------------------------------------------------------------- bad input

def test_empty_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(PssrInputError) as e: hr_dataloaders(tmp_path / 'empty', 'em')
    assert_one_line(e, 'empty', 'no images')


def test_missing_source_and_empty_list(tmp_path):
    with pytest.raises(PssrInputError) as e: hr_dataloaders(tmp_path / 'nope', 'em')
    assert_one_line(e, 'nope')
    with pytest.raises(PssrInputError) as e: hr_dataloaders([], 'em')
    assert_one_line(e, 'no images given')


@pytest.mark.parametrize('size,scale', [(130, 4), (127, 4), (2, 4)])
def test_size_not_divisible_by_scale(em, size, scale):
    with pytest.raises(PssrInputError) as e: hr_dataloaders(em, Downsample(scale=scale), scale=scale, size=size)
    assert_one_line(e, f'crop size {size}', f'scale {scale}')


@pytest.mark.parametrize('n_frames', [0, 2, 4])
def test_n_frames_even(em, n_frames):
    with pytest.raises(PssrInputError) as e: hr_dataloaders(em, 'em', size=64, n_frames=n_frames)
    assert_one_line(e, 'must be odd')


def test_n_frames_larger_than_stack(tmp_path):
    p = write_synthetic(tmp_path, 'fluo', n=1, size=64, n_frames=3)[0]
    with pytest.raises(PssrInputError) as e: hr_dataloaders([p], 'fluo', size=64, n_frames=5)
    assert_one_line(e, p.name, 'stack of 3 frames', 'n_frames=5')
    with pytest.raises(PssrInputError) as e: hr_dataloaders(synthetic('fluo', 2, 64), 'fluo', size=64, n_frames=5)
    assert_one_line(e, 'array[0]', 'single 2D image')


def test_image_smaller_than_crop(em):
    with pytest.raises(PssrInputError) as e: hr_dataloaders([np.random.rand(100, 300)], 'em', size=128)
    assert_one_line(e, 'array[0]', '100x300', '128 px crop')


def test_bad_arrays():
    with pytest.raises(PssrInputError) as e: hr_dataloaders([np.ones((128, 128))], 'em', size=64)
    assert_one_line(e, 'constant')
    with pytest.raises(PssrInputError) as e: hr_dataloaders([np.random.rand(2, 3, 128, 128)], 'em', size=64)
    assert_one_line(e, '4 dimensions')
    bad = np.random.rand(128, 128); bad[0, 0] = np.nan
    with pytest.raises(PssrInputError) as e: hr_dataloaders([bad], 'em', size=64)
    assert_one_line(e, 'NaN')


def test_crappifier_scale_mismatch(em):
    with pytest.raises(PssrInputError) as e: hr_dataloaders(em, EMCrappifier(scale=2), scale=4, size=64)
    assert_one_line(e, 'downsamples by 2', 'scale=4')
    with pytest.raises(PssrInputError) as e: hr_dataloaders(em, 'nonsense', size=64)
    assert_one_line(e, 'nonsense')


def test_crappifier_wrong_output_shape(em):
    with pytest.raises(PssrInputError) as e: hr_dataloaders(em, lambda x, rng=None: x[..., ::2, ::2], scale=4, size=64)
    assert_one_line(e, 'returned 32x32 px', 'expected 16 px')


def test_pairs_mismatched_size(tmp_path):
    lr_dir, hr_dir = write_pairs(tmp_path, n=2)
    write_tiff(hr_dir / 'im1.tif', synthetic('em', 1, 100)[0])
    with pytest.raises(PssrInputError) as e: pair_dataloaders(lr_dir, hr_dir, scale=4, size=64)
    assert_one_line(e, str(hr_dir / 'im1.tif'), str(lr_dir / 'im1.tif'), '100x100', '32x32', '128x128')
    with pytest.raises(PssrInputError) as e: pair_dataloaders(*write_pairs(tmp_path / 'x', n=2), scale=2, size=64)
    assert_one_line(e, 'scale=2', '64x64 px')  # 128 px HR is not 32 px LR x 2


def test_pairs_unmatched_names(tmp_path):
    lr_dir, hr_dir = write_pairs(tmp_path, n=2)
    (lr_dir / 'im1.tif').rename(lr_dir / 'other.tif')
    with pytest.raises(PssrInputError) as e: pair_dataloaders(lr_dir, hr_dir, size=64)
    assert_one_line(e, 'without a partner', 'other', 'im1', 'matched by file name')


def test_pairs_frames_mismatch(tmp_path):
    lr_dir, hr_dir = write_pairs(tmp_path, n=2, frames=7, hr_frames=1)  # 2D HR for 7-frame LR stacks
    with pytest.raises(PssrInputError) as e: pair_dataloaders(lr_dir, hr_dir, size=64, n_frames=5)
    assert_one_line(e, 'has 1 frame(s)', 'has 7', 'n_frames=5')


# ---------------------------------------------------------------- behaviour

def test_batches_single_and_multi_frame(tmp_path):
    dls = hr_dataloaders(write_synthetic(tmp_path / 'em', 'em', n=3, size=128), 'em', size=64, bs=4)
    x, y = dls.one_batch()
    assert (x.shape, y.shape, x.dtype, y.dtype) == ((4, 1, 16, 16), (4, 1, 64, 64), torch.float32, torch.float32)
    assert (dls.n_inp, dls.c) == (1, 1)
    movies = write_synthetic(tmp_path / 'mv', 'fluo', n=2, size=64, n_frames=7)
    dls5 = hr_dataloaders(movies, 'fluo', size=64, bs=4, n_frames=5, tiles_per_image=2)
    x5, y5 = dls5.one_batch()
    assert (x5.shape, y5.shape) == ((4, 5, 16, 16), (4, 1, 64, 64))
    assert dls5.pssr_meta['n_frames'] == 5 and dls5.pssr_meta['lr_size'] == 16


def test_lr_is_crappified_hr(em):
    dls = hr_dataloaders(em, Compose(NOISELESS, AdditiveGaussian(sigma=0.01)), size=64, bs=8)
    x, y = dls.one_batch()
    assert np.corrcoef(F.avg_pool2d(y, 4).flatten().cpu(), x.flatten().cpu())[0, 1] > 0.9


def test_augmentation_aligned(tmp_path, em):
    dls = hr_dataloaders(em, NOISELESS, size=64, bs=16)
    ops = set()
    for _ in range(3):
        x, y = dls.one_batch()
        torch.testing.assert_close(F.avg_pool2d(y, 4), x, atol=1e-5, rtol=0)
    pdls = pair_dataloaders(*write_pairs(tmp_path), size=64, bs=16)
    for _ in range(3):
        x, y = pdls.one_batch()
        assert min(corrs(x, y)) > 0.999
    # the augmentation really happens: the same training tile comes out in different orientations
    single = hr_dataloaders([em[0]], NOISELESS, size=128, bs=1, valid_pct=0, tiles_per_image=1)
    outs = [single.train.do_item(0)[1] for _ in range(30)]
    assert len({tuple(o.flatten()[:8].tolist()) for o in outs}) >= 4


def test_multi_frame_pairs(tmp_path):
    dls = pair_dataloaders(*write_pairs(tmp_path / 'a', n=3, frames=7), size=64, bs=4, n_frames=5, tiles_per_image=2)
    x, y = dls.one_batch()
    assert (x.shape, y.shape) == ((4, 5, 16, 16), (4, 1, 64, 64))
    assert min(corrs(x, y)) > 0.999  # the target is the centre frame
    assert len(dls.train_ds) == 2 * 3 * 2  # 3 centre frames of 7, 2 training movies
    dls2 = pair_dataloaders(*write_pairs(tmp_path / 'b', n=3, frames=5, hr_frames=1), size=64, bs=4, n_frames=5)
    x, y = dls2.one_batch()
    assert x.shape == (4, 5, 16, 16) and min(corrs(x, y)) > 0.999


def test_split_by_image(em):
    tr, va = split_by_image(7, 0.3, seed=3)
    assert not set(tr) & set(va) and sorted(tr + va) == list(range(7)) and len(va) == 2
    assert split_by_image(7, 0.3, seed=4) != (tr, va) or split_by_image(7, 0.3, seed=5) != (tr, va)
    dls = hr_dataloaders(em + synthetic('em', 2, 128, seed=9), 'em', size=64, bs=4, valid_pct=0.4, seed=2)
    tr_src = {t.src for t in dls.train_ds.items}; va_src = {t.src for t in dls.valid_ds.items}
    assert not tr_src & va_src and len(va_src) == 2 and len(tr_src) == 3
    assert not set(dls.pssr_meta['train_images']) & set(dls.pssr_meta['valid_images'])


def test_single_image_split_by_region():
    img = synthetic('em', 1, 256)[0]
    dls = hr_dataloaders([img], 'em', size=64, bs=4, valid_pct=0.25)
    (t_rows,) = {t.rows for t in dls.train_ds.items}; (v_rows,) = {t.rows for t in dls.valid_ds.items}
    assert t_rows == (0, 192) and v_rows == (192, 256)
    assert all(t.y >= 192 for t in dls.valid_ds.items)
    rng = np.random.default_rng(0)
    corners = [tile_corner(dls.train_ds.items[0], img, 64, 0.5, rng) for _ in range(50)]
    assert all(y + 64 <= 192 for y, _ in corners)
    with pytest.warns(UserWarning, match='too small to split'):
        hr_dataloaders([synthetic('em', 1, 100)[0]], 'em', size=64, bs=2)


def test_single_stack_single_frame_uses_every_slice():
    stack = np.stack(synthetic('em', 4, 128))
    dls = hr_dataloaders([stack], NOISELESS, size=64, bs=4, tiles_per_image=2, valid_pct=0.5)
    assert {t.frame for t in dls.train_ds.items} == {0, 1, 2, 3}
    x, y = dls.one_batch()
    assert x.shape == (4, 1, 16, 16)


def test_fresh_noise_in_train_fixed_in_valid(em):
    dls = hr_dataloaders(em, 'em', size=64, bs=4, tiles_per_image=4)
    a, b = dls.valid.do_item(1), dls.valid.do_item(1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(torch.cat([x for x, _ in dls.valid]), torch.cat([x for x, _ in dls.valid]))
    a, b = dls.train.do_item(0), dls.train.do_item(0)
    assert not torch.equal(a[0], b[0])
    # even with the same crop and orientation the noise differs: use a single-position training tile
    fixed = hr_dataloaders([em[0]], 'em', size=128, bs=1, valid_pct=0, tiles_per_image=1)
    outs = [fixed.train.do_item(0) for _ in range(20)]  # 20 draws of 8 orientations: some HR repeats (pigeonhole)
    pairs = [(a, b) for i, a in enumerate(outs) for b in outs[i + 1:] if torch.equal(a[1], b[1])]
    assert pairs and all(not torch.equal(a[0], b[0]) for a, b in pairs)


def test_training_noise_follows_fastai_seed(em):
    from fastai.torch_core import set_seed
    dls = hr_dataloaders(em, 'em', size=64, bs=4)
    set_seed(7); a = dls.train.do_item(3)
    set_seed(7); b = dls.train.do_item(3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_uint16_keeps_dynamic_range(tmp_path):
    paths = write_synthetic(tmp_path, 'fluo', n=2, size=128, dtype='uint16')
    dls = hr_dataloaders(paths, NOISELESS, size=64, bs=4, tiles_per_image=4)
    y = torch.cat([b[1] for b in dls.valid]).cpu()
    assert y.dtype == torch.float32 and y.max() > 0.5 and y.max() < 1.5  # normalised, not divided by 255 nor clipped
    assert len(torch.unique(y)) > 500
    ramp = (np.linspace(0, 60000, 128)[None] * np.ones((128, 1))).astype(np.uint16)
    d = hr_dataloaders([ramp, ramp.T.copy()], NOISELESS, size=64, bs=2, tiles_per_image=2)
    y = torch.cat([b[1] for b in d.valid])
    assert float((y >= 0.999).float().mean()) < 0.05 and len(torch.unique(y)) > 30


def test_meta_and_show(em):
    dls = hr_dataloaders(em, 'em', size=64, bs=4, pmin=1, pmax=99)
    m = dls.pssr_meta
    assert {k: m[k] for k in ('pmin', 'pmax', 'scale', 'n_frames', 'size')} == dict(pmin=1, pmax=99, scale=4, n_frames=1, size=64)
    assert m['crappifier']['name'] == 'EMCrappifier' and m['n_train_tiles'] == len(dls.train_ds)
    import matplotlib; matplotlib.use('Agg')
    fig = dls.show_batch(max_n=2)
    assert len(fig.axes) == 4
    x, y = dls.one_batch()
    assert len(show_pairs((x, y), max_n=3, preds=y).axes) == 9


def test_fastai_learner_trains(em):
    from fastai.learner import Learner
    from fastai.losses import MSELossFlat
    dls = hr_dataloaders(em, 'em', size=64, bs=4, tiles_per_image=4, device='cpu')
    model = torch.nn.Sequential(torch.nn.Upsample(scale_factor=4, mode='bilinear'), torch.nn.Conv2d(1, 1, 3, padding=1))
    learn = Learner(dls, model, loss_func=MSELossFlat())
    with learn.no_logging(): learn.fit(1, 1e-3)
    preds, targs = learn.get_preds()
    assert preds.shape == targs.shape == (len(dls.valid_ds), 1, 64, 64)
    assert np.isfinite(learn.recorder.values[-1]).all()


def test_valid_pct_zero(em):
    dls = hr_dataloaders(em, 'em', size=64, bs=4, valid_pct=0)
    assert len(dls.valid_ds) == 0 and len(dls.train_ds) == 3 * 16
    assert dls.one_batch()[0].shape == (4, 1, 16, 16)
