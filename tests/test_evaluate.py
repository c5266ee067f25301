"End-to-end, fault and CLI tests of `pssr.evaluate` on synthetic data (never the shared development data)."
import argparse

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from pssr.evaluate import (BASELINES, FRC_THRESHOLD, PSNR_CAP, alignment_of, baseline_upscale,
                           error_map, evaluate_pairs, evaluate_synthetic, fit_affine, frc, frc_resolution,
                           nrmse, psnr_normalized, ssim_normalized)
from pssr.io import PssrInputError, normalize_percentile, write_tiff

COLUMNS = ['image', 'method', 'psnr', 'ssim', 'nrmse', 'frc_px']


@pytest.fixture(scope='module')
def gt(cell):
    "A 256 x 256 crop of skimage's cell image, float32."
    return cell[:256, :256].astype(np.float32)


def band_limited(size, cutoff, seed):
    "Unit-variance white noise low-pass filtered with a sharp circular cut-off at `cutoff` cycles/pixel."
    noise = np.random.default_rng(seed).normal(size=(size, size))
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None]
    img = np.fft.ifft2(np.fft.fft2(noise) * (np.hypot(fy, fx) <= cutoff)).real
    return img / img.std()


def bicubic_model(lr):
    "Stand-in model: any callable lr -> hr is accepted."
    return baseline_upscale(lr, 4, 'bicubic') * 2 + 5


class TinyNet(torch.nn.Module):
    "Stand-in PSSRNet: bilinear 4x upscaling, with the attributes pssr.predict needs."
    scale, n_frames, mode, arch = 4, 1, 'lr', 'stand-in'

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(()))  # pssr.predict sizes tiles from the parameters' device

    def forward(self, x):
        return self.gain * F.interpolate(x[:, :1], scale_factor=self.scale, mode='bilinear', align_corners=False)


def write_pairs(folder, gt, n=2, pixel_size=None, scale=4):
    "Write `n` HR crops and their 4x binned LR versions as TIFFs under folder/hr and folder/lr."
    for i in range(n):
        hr = gt[i * 16:i * 16 + 128, :128]
        lr = hr.reshape(128 // scale, scale, 128 // scale, scale).mean((1, 3))
        write_tiff(folder / 'hr' / f'img{i}.tif', hr, pixel_size=pixel_size)
        write_tiff(folder / 'lr' / f'img{i}.tif', lr)
    return folder / 'lr', folder / 'hr'


def run_cli(argv):
    "Run `pssr` with `argv` through pssr.cli.main, or a local parser while not every subcommand exists yet."
    from pssr.cli import main
    return main(argv)


# --- metrics -------------------------------------------------------------------------------------------

def test_identical_scores_perfect(gt):
    assert psnr_normalized(gt, gt) == PSNR_CAP
    assert ssim_normalized(gt, gt) == pytest.approx(1.0, abs=1e-9)
    assert nrmse(gt, gt) < 1e-6


@pytest.mark.parametrize('a,b', [(3.0, 100.0), (0.01, -2.0), (-1.5, 7.0)])
def test_affine_copy_scores_as_identical(gt, a, b):
    pred = (a * gt + b).astype(np.float32)
    assert psnr_normalized(gt, pred) == psnr_normalized(gt, gt)
    assert ssim_normalized(gt, pred) == pytest.approx(ssim_normalized(gt, gt), abs=1e-6)
    np.testing.assert_allclose(fit_affine(gt, pred), gt, atol=1e-3)


def test_affine_invariance_with_noise(gt, rng):
    "Gain and offset of a noisy prediction do not change any metric."
    noisy = normalize_percentile(gt) + rng.normal(0, 0.05, gt.shape)
    for f in (psnr_normalized, ssim_normalized, nrmse):
        assert f(gt, 10 * noisy - 3) == pytest.approx(f(gt, noisy), rel=1e-6)


def test_noise_lowers_psnr_monotonically(gt, rng):
    g = normalize_percentile(gt)
    preds = [g + rng.normal(0, s, g.shape) for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.4)]
    psnr = [psnr_normalized(gt, p) for p in preds]
    ssim = [ssim_normalized(gt, p) for p in preds]
    assert np.all(np.diff(psnr) < 0), psnr
    assert np.all(np.diff(ssim) < 0), ssim
    assert psnr_normalized(gt, preds[1]) == pytest.approx(-20 * np.log10(nrmse(gt, preds[1])))


def test_error_map_is_absolute_normalised_error(gt, rng):
    pred = gt + rng.normal(0, 20, gt.shape)
    e = error_map(gt, pred)
    assert e.shape == gt.shape and e.min() >= 0
    assert np.sqrt(np.mean(e.astype(np.float64) ** 2)) == pytest.approx(nrmse(gt, pred), rel=1e-4)


# --- Fourier ring correlation ----------------------------------------------------------------------------

@pytest.mark.parametrize('cutoff', [0.12, 0.2, 0.3])
def test_frc_finds_band_limit_of_two_acquisitions(cutoff):
    spec = band_limited(256, cutoff, seed=0)
    rng = np.random.default_rng(1)
    a, b = (spec + rng.normal(0, 1.0, spec.shape) for _ in range(2))
    freq, corr = frc(a, b)
    assert frc_resolution(freq, corr) == pytest.approx(1 / cutoff, rel=0.1)
    snr = 1 / (np.pi * cutoff ** 2)
    assert corr[freq < 0.8 * cutoff].mean() == pytest.approx(snr / (1 + snr), abs=0.05)
    assert abs(corr[freq > 1.2 * cutoff].mean()) < 0.05


@pytest.mark.parametrize('window', ['tukey', 'hann'])
def test_frc_single_image_split(window):
    cutoff = 0.15  # the checkerboard halves can resolve up to 0.25 cycles per original pixel
    img = band_limited(256, cutoff, seed=2) + np.random.default_rng(3).normal(0, 1.0, (256, 256))
    freq, corr = frc(img, window=window)
    assert freq.max() == pytest.approx(0.25)
    assert frc_resolution(freq, corr) == pytest.approx(1 / cutoff, rel=0.1)


def test_frc_window_suppresses_edge_artifact():
    "A ramp (large jump between opposite edges) plus independent noise: unwindowed FRC stays falsely high."
    ramp = np.add.outer(np.arange(128.), np.arange(128.)) / 10
    rng = np.random.default_rng(0)
    a, b = (ramp + rng.normal(0, 1, ramp.shape) for _ in range(2))
    high = lambda window: frc(a, b, window=window)[1][40:].mean()
    assert high(None) > 0.3 and abs(high('tukey')) < 0.1


def test_frc_resolution_units():
    freq = np.linspace(0.01, 0.5, 50)
    corr = np.where(freq < 0.1, 0.9, 0.0)
    px = frc_resolution(freq, corr, smooth=1)
    assert 1 / px == pytest.approx(0.1, abs=0.01)
    assert frc_resolution(freq, corr, smooth=1, pixel_size=0.008) == pytest.approx(px * 8)  # 8 nm pixels
    assert frc_resolution(freq, np.ones_like(freq)) == pytest.approx(2.0)  # limited by sampling
    assert np.isnan(frc_resolution(freq, np.zeros_like(freq)))
    assert FRC_THRESHOLD == pytest.approx(1 / 7)


def test_frc_bad_input():
    with pytest.raises(PssrInputError, match='differ in shape'): frc(np.ones((32, 32)), np.ones((32, 30)))
    with pytest.raises(PssrInputError, match='unknown FRC window'): frc(np.ones((32, 32)), np.ones((32, 32)), window='kaiser')


# --- baselines ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('method', BASELINES)
@pytest.mark.parametrize('align', ['centers', 'corners'])
@pytest.mark.parametrize('shape,scale', [((17, 23), 4), ((3, 8, 10), 2), ((16, 16), 1)])
def test_baseline_shape(method, align, shape, scale):
    out = baseline_upscale(np.random.default_rng(0).random(shape), scale, method, align)
    assert out.shape == shape[:-2] + (shape[-2] * scale, shape[-1] * scale) and out.dtype == np.float32


@pytest.mark.parametrize('method', ['bilinear', 'area'])
def test_upscale_inverts_crappifier_downsampling(method):
    "upscale(downsample(x)) of a smooth image is x again, with the alignment alignment_of measures."
    from pssr.crappify import downsample
    yy, xx = np.mgrid[:256, :256] / 256
    smooth = ((np.sin(3 * np.pi * xx) * np.cos(2 * np.pi * yy) + 1) / 2).astype(np.float32)
    crap = lambda x, rng=None: downsample(x, 4, method)
    crap.scale = 4
    align = alignment_of(crap)
    for m in ('bilinear', 'bicubic'):
        assert np.abs(baseline_upscale(crap(smooth), 4, m, align) - smooth)[8:-8, 8:-8].max() < 0.01


def test_alignment_of_real_crappifiers():
    from pssr.crappify import get_crappifier
    for name in ('em', 'fluo'):
        c = get_crappifier(name, 4)
        assert alignment_of(c) == alignment_of(c, seed=1)  # noise does not decide it


def test_baseline_bad_input():
    with pytest.raises(PssrInputError, match='unknown upscaling method'): baseline_upscale(np.ones((4, 4)), 2, 'lanczos')
    with pytest.raises(PssrInputError, match='positive integer'): baseline_upscale(np.ones((4, 4)), 1.5)
    with pytest.raises(PssrInputError, match='alignment'): baseline_upscale(np.ones((4, 4)), 2, align='edges')


# --- evaluation runs ----------------------------------------------------------------------------------------

def check_outputs(out, table, names, methods):
    "CSV and PNG files of an evaluation run, and the columns of its tables."
    for name in names:
        assert (out / f'{name}_evaluation.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        per_image = pd.read_csv(out / f'{name}_metrics.csv')
        assert list(per_image.columns[:6]) == COLUMNS and list(per_image.method) == methods
    all_rows = pd.read_csv(out / 'metrics.csv')
    assert len(all_rows) == len(table) == len(names) * len(methods)
    summary = pd.read_csv(out / 'summary.csv')
    assert list(summary.method) == methods and (summary.n_images == len(names)).all()
    for c in ('psnr', 'ssim', 'nrmse', 'frc_px'):
        assert {f'{c}_mean', f'{c}_sd'} <= set(summary.columns)
        np.testing.assert_allclose(summary[f'{c}_mean'], table.groupby('method', sort=False)[c].mean().values)
    assert not any(p.suffix == '.tmp' for p in out.iterdir())


def test_evaluate_pairs_with_callable_model(tmp_path, gt, capsys):
    lr_dir, hr_dir = write_pairs(tmp_path, gt, n=2, pixel_size=0.008)
    table = evaluate_pairs(bicubic_model, lr_dir, hr_dir, tmp_path / 'out', progress=False)
    methods = ['nearest', 'bilinear', 'bicubic', 'model']
    check_outputs(tmp_path / 'out', table, ['img0', 'img1'], methods)
    np.testing.assert_allclose(table.frc_nm, table.frc_px * 8, rtol=1e-5)  # pixel size read from the HR TIFF
    t = table.set_index(['image', 'method'])
    np.testing.assert_allclose(t.psnr.xs('model', level=1), t.psnr.xs('bicubic', level=1))  # affine-invariant
    assert (t.psnr.xs('bicubic', level=1) > t.psnr.xs('nearest', level=1)).all()
    assert 'bicubic' in capsys.readouterr().out  # the printed summary


def test_evaluate_pairs_with_network(tmp_path, gt):
    "A torch module goes through pssr.predict.restore."
    lr_dir, hr_dir = write_pairs(tmp_path, gt, n=1)
    table = evaluate_pairs(TinyNet(), lr_dir, hr_dir, tmp_path / 'out', progress=False).set_index('method')
    # same interpolation as the bilinear baseline except at the border (restore pads by reflection)
    assert table.psnr['nearest'] < table.psnr['model'] < table.psnr['bilinear'] + 0.5
    assert table.psnr['model'] == pytest.approx(table.psnr['bilinear'], abs=1.5)


def test_evaluate_baselines_only_and_lists(tmp_path, gt):
    lr_dir, hr_dir = write_pairs(tmp_path, gt, n=2)
    lrs, hrs = sorted(lr_dir.iterdir()), sorted(hr_dir.iterdir())
    table = evaluate_pairs(None, lrs, hrs, tmp_path / 'out', pixel_size=0.1, progress=False)
    check_outputs(tmp_path / 'out', table, ['img0', 'img1'], list(BASELINES))
    np.testing.assert_allclose(table.frc_nm, table.frc_px * 100, rtol=1e-5)


def test_evaluate_synthetic(tmp_path, gt):
    for i in range(2): write_tiff(tmp_path / 'hr' / f'c{i}.tif', gt[i * 32:i * 32 + 128, :128])
    before = {p.name: p.read_bytes() for p in (tmp_path / 'hr').iterdir()}
    run = lambda out: evaluate_synthetic(bicubic_model, tmp_path / 'hr', 'em', tmp_path / out, seed=3, progress=False)
    table = run('a')
    check_outputs(tmp_path / 'a', table, ['c0', 'c1'], ['nearest', 'bilinear', 'bicubic', 'model'])
    pd.testing.assert_frame_equal(table, run('b'))  # seeded: reproducible
    assert {p.name: p.read_bytes() for p in (tmp_path / 'hr').iterdir()} == before  # inputs untouched


# --- bad input -----------------------------------------------------------------------------------------------

def test_metric_bad_input(gt):
    with pytest.raises(PssrInputError, match='differ in shape'): psnr_normalized(gt, gt[:-1])
    bad = gt.copy(); bad[3, 3] = np.nan
    with pytest.raises(PssrInputError, match='NaN'): ssim_normalized(gt, bad)
    with pytest.raises(PssrInputError, match='NaN'): nrmse(bad, gt)
    with pytest.raises(PssrInputError, match='constant'): psnr_normalized(np.ones((32, 32)), gt[:32, :32])


def test_missing_pair(tmp_path, gt):
    lr_dir, hr_dir = write_pairs(tmp_path, gt, n=2)
    (hr_dir / 'img1.tif').unlink()
    with pytest.raises(PssrInputError, match='img1.*no partner'):
        evaluate_pairs(None, lr_dir, hr_dir, tmp_path / 'out', progress=False)
    with pytest.raises(PssrInputError, match='same, non-zero number'):
        evaluate_pairs(None, [lr_dir / 'img0.tif', lr_dir / 'img1.tif'], [hr_dir / 'img0.tif'], tmp_path / 'out')


def test_mismatched_shapes(tmp_path, gt):
    write_tiff(tmp_path / 'lr' / 'a.tif', gt[:30, :32])
    write_tiff(tmp_path / 'hr' / 'a.tif', gt[:128, :128])
    with pytest.raises(PssrInputError, match='a.tif.*not an integer multiple'):
        evaluate_pairs(None, tmp_path / 'lr', tmp_path / 'hr', tmp_path / 'out', progress=False)


def test_model_scale_mismatch(tmp_path, gt):
    lr_dir, hr_dir = write_pairs(tmp_path, gt, n=1, scale=2)
    with pytest.raises(PssrInputError, match='model upscales 4x'):
        evaluate_pairs(TinyNet(), lr_dir, hr_dir, tmp_path / 'out', progress=False)


def test_nan_in_file(tmp_path, gt):
    lr_dir, hr_dir = write_pairs(tmp_path, gt, n=1)
    lr = gt[:32, :32].copy(); lr[5, 5] = np.nan
    write_tiff(lr_dir / 'img0.tif', lr)
    with pytest.raises(PssrInputError, match='NaN'):
        evaluate_pairs(None, lr_dir, hr_dir, tmp_path / 'out', progress=False)


# --- command line ---------------------------------------------------------------------------------------------

def test_cli_real_pairs_and_synthetic(tmp_path, gt):
    lr_dir, hr_dir = write_pairs(tmp_path, gt, n=1)
    assert run_cli(['evaluate', '--lr-dir', str(lr_dir), '--hr-dir', str(hr_dir), '-o', str(tmp_path / 'o1'),
                    '--pixel-size', '0.01', '-q']) == 0
    assert 'frc_nm_mean' in pd.read_csv(tmp_path / 'o1' / 'summary.csv').columns
    assert run_cli(['evaluate', '--hr-dir', str(hr_dir), '--crappifier', 'fluo', '--scale', '4',
                    '-o', str(tmp_path / 'o2'), '-q']) == 0
    assert (tmp_path / 'o2' / 'img0_evaluation.png').exists()


@pytest.mark.parametrize('extra', [
    ['--lr-dir', 'MISSING_DIR'],                 # missing folder
    [],                                      # neither --lr nor --crappifier
    ['--crappifier', 'bogus'],               # unknown crappifier
    ['--crappifier', 'em', '--model', 'no_such_model.pth'],  # missing model
])
def test_cli_bad_input_exit_code_2(tmp_path, gt, extra, capsys):
    _, hr_dir = write_pairs(tmp_path, gt, n=1)
    extra = [str(tmp_path / e) if e == 'MISSING_DIR' else e for e in extra]
    assert run_cli(['evaluate', '--hr-dir', str(hr_dir), '-o', str(tmp_path / 'out'), '-q', *extra]) == 2
