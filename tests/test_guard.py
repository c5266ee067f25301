"""Hallucination guard (`pssr.evaluate.trust`): consistent restorations pass (also correct denoising), invented structure is flagged;
a filament model is trusted on filaments and flagged on dots; `pssr predict --consistency`, `pssr evaluate`."""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage

from pssr.crappify import downsample, get_crappifier
from pssr.data import synthetic, write_synthetic
from pssr.evaluate import (clean_degradation, consistency, evaluate_synthetic, model_degradation, noise_sd, trust, trust_warning,
                           TRUST_AREA, TRUST_CHI2)
from pssr.io import PssrInputError, read_image, write_tiff

torch.set_num_threads(1)


def invent_dots(hr, n=30, seed=0):
    "`hr` with bright dots added: structure no input shows."
    out, r = hr.copy(), np.random.default_rng(seed)
    for y, x in r.integers(8, min(hr.shape) - 8, (n, 2)): out[y - 2:y + 3, x - 2:x + 3] += 1.0
    return out


@pytest.mark.parametrize('kind', ['fluo', 'em'])
def test_truth_passes_invention_flagged(kind):
    "Noise-free input: the ground truth is consistent (nothing flagged); the same image with invented dots is flagged, on the dots."
    hr = synthetic(kind, n=1, size=192, seed=3)[0].astype(np.float64)
    deg = clean_degradation(None, 4)
    lr = deg(hr)
    _, ok = trust(lr, hr, deg)
    fake = invent_dots(hr)
    tmap, bad = trust(lr, fake, deg)
    assert ok['flagged_pct'] == 0 and trust_warning(ok) is None
    assert bad["flagged_pct"] > 2 * TRUST_AREA and trust_warning(bad, 'x').startswith('warning: x:')
    far = ndimage.distance_transform_edt(fake == hr) > 24  # HR px: beyond the map's low-pass and window (3 LR px at 4x)
    on = fake > hr + 0.5
    assert np.median(tmap[on]) > 20 * np.median(tmap[far]) and tmap[far].max() < TRUST_CHI2, (np.median(tmap[on]), np.median(tmap[far]), tmap[far].max())


@pytest.mark.parametrize('crap', ['em', 'physical'])
def test_denoising_is_not_flagged(crap):
    """Very noisy input: the noise-free truth (a perfect denoiser) leaves only the input's noise as residual: chi2 ~ 1, not flagged;
    invented dots on it are flagged."""
    hr = synthetic('em', n=1, size=256, seed=1)[0].astype(np.float64)
    c = get_crappifier(crap, 2)
    lr = c(hr, np.random.default_rng(0))
    deg = clean_degradation(c)
    _, ok = trust(lr, hr, deg)
    _, bad = trust(lr, invent_dots(hr, n=60), deg)
    assert 0.5 < ok['consistency_chi2'] < 2 and ok['flagged_pct'] < TRUST_AREA / 2 and trust_warning(ok) is None, ok
    assert bad['flagged_pct'] > 4 * TRUST_AREA, bad


def test_chi2_is_calibrated_on_white_noise():
    "A residual of pure white noise of known sd: `noise_sd` measures it and the mean local chi-square is 1."
    hr = synthetic('fluo', n=1, size=512, seed=2)[0].astype(np.float64)
    deg = clean_degradation(None, 2)
    clean = deg(hr)
    noise = np.random.default_rng(1).normal(0, 0.02, clean.shape)
    assert abs(noise_sd(noise) / 0.02 - 1) < 0.05
    assert abs(trust(clean + noise * np.ptp(clean), hr, deg)[1]['consistency_chi2'] - 1) < 0.2


FILAMENT_OPTICS = dict(name='PhysicalCrappifier', scale=2, psf_sigma=2.0, photons=200.0, read_noise=2.0)


def dots(size, n, seed):
    "Sub-resolution beads: single bright HR pixels, slightly blurred, in [0, 1]."
    img, r = np.zeros((size, size), np.float32), np.random.default_rng(seed)
    img[tuple(r.integers(8, size - 8, (2, n)))] = 1.0
    img = ndimage.gaussian_filter(img, 0.7)
    return img / img.max()


@pytest.fixture(scope='module')
def filament_model(tmp_path_factory):
    "A light U-Net trained (seeded, ~15 CPU s) on synthetic filaments seen through a microscope: PSF 2 HR px, 2x binning, photon noise."
    from pssr.crappify import Crappifier
    from pssr.learner import TrainConfig, train
    tmp = tmp_path_factory.mktemp('filaments')
    write_synthetic(tmp / 'hr', 'fluo', n=4, size=192, seed=0)
    Crappifier.from_dict(FILAMENT_OPTICS).save(tmp / 'optics.json')
    train(TrainConfig(name='fil', hr=str(tmp / 'hr'), crappifier=str(tmp / 'optics.json'), arch='unet_small', scale=2, size=64, bs=4,
                      epochs=12, lr=4e-3, tiles_per_image=16, models_dir=str(tmp / 'models'), seed=0))
    return tmp / 'models' / 'fil.pth'


def test_filament_model_trusted_on_filaments_flagged_on_dots(filament_model):
    """The issue's test: near zero where the model is right (held-out filaments: chi2 < 1, almost nothing flagged, no warning), high
    where it is forced to invent: dots imaged sharper (PSF 0.5 px) than anything its forward model can produce."""
    from pssr.predict import restore
    deg, own, sharp = model_degradation(filament_model), get_crappifier(FILAMENT_OPTICS), get_crappifier({**FILAMENT_OPTICS, 'psf_sigma': 0.5})
    right, forced = [], []
    for seed in (10, 11):
        for gt, c, out in ((synthetic('fluo', n=1, size=128, seed=seed)[0], own, right), (dots(128, 40, seed), sharp, forced)):
            lr = np.asarray(c(gt, np.random.default_rng(seed)), np.float32)
            out.append(trust(lr, restore(filament_model, lr, progress=False), deg))
    for tmap, st in right: assert st['flagged_pct'] < TRUST_AREA / 2 and st['consistency_chi2'] < 1.5 and trust_warning(st) is None, st
    for tmap, st in forced: assert st['flagged_pct'] > 5 * TRUST_AREA and trust_warning(st) is not None, st
    assert min(st['consistency_chi2'] for _, st in forced) > 3 * max(st['consistency_chi2'] for _, st in right)
    assert min(np.percentile(m, 95) for m, _ in forced) > 2 * TRUST_CHI2 > TRUST_CHI2 > max(np.percentile(m, 95) for m, _ in right)


def test_clean_degradation_drops_noise_keeps_blur():
    x = synthetic('fluo', n=1, size=64, seed=0)[0]
    phys = {'name': 'PhysicalCrappifier', 'scale': 2, 'psf_sigma': 1.5, 'binning': 'area'}
    np.testing.assert_allclose(clean_degradation(phys)(x), downsample(ndimage.gaussian_filter(x.astype(np.float64), 1.5, mode='nearest'), 2, 'area'), atol=1e-6)
    np.testing.assert_allclose(clean_degradation(get_crappifier('em', 4))(x), downsample(x.astype(np.float64), 4), atol=1e-6)
    comp = {'name': 'Compose', 'steps': [{'name': 'Blur', 'sigma': 1.0, 'spread': 0.0}, {'name': 'Downsample', 'scale': 2, 'method': 'area', 'align': 'centers'},
                                          {'name': 'Poisson', 'photons': 10.0, 'spread': 0.0}]}
    assert clean_degradation(comp)(x).shape == (32, 32)


def test_bad_input():
    deg = clean_degradation(None, 2)
    with pytest.raises(PssrInputError, match='does not match'): consistency(np.ones((16, 16)) + np.eye(16), np.ones((16, 16)), deg)
    with pytest.raises(PssrInputError, match='planes'): consistency(np.ones((2, 8, 8)), np.ones((3, 16, 16)), deg)


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    from pssr.learner import TrainConfig, train
    tmp = tmp_path_factory.mktemp('guard')
    write_synthetic(tmp / 'hr', 'fluo', n=3, size=96, seed=0)
    cfg = TrainConfig(name='g', hr=str(tmp / 'hr'), crappifier='em', arch='unet_small', scale=2, size=64, bs=2, epochs=1,
                      tiles_per_image=2, valid_pct=0.34, models_dir=str(tmp / 'models'))
    train(cfg)
    return tmp / 'models' / 'g.pth', tmp


def test_model_degradation_reads_json(tiny_model):
    model, _ = tiny_model
    x = np.random.default_rng(0).random((32, 32))
    np.testing.assert_allclose(model_degradation(model)(x), downsample(x, 2), atol=1e-9)


def test_cli_predict_consistency(tiny_model, capsys):
    "`--consistency` (the issue's name; `--trust` is the same flag) writes the trust map and prints the consistency PSNR."
    from pssr.cli import main
    model, tmp = tiny_model
    src = write_tiff(tmp / 'in' / 'a.tif', (synthetic('em', n=1, size=64, seed=5)[0] * 1000).astype(np.float32), pixel_size=0.2)
    args = ['predict', str(model), str(src), '-o', str(tmp / 'out'), '-q', '--consistency', '--tta']
    assert main(args) == 0
    out = capsys.readouterr().out
    tmap, meta = read_image(tmp / 'out' / 'a_trust.tif')
    assert tmap.shape == (128, 128) and np.isfinite(tmap).all() and abs(meta.pixel_size - 0.1) < 1e-6
    assert 'consistency chi2' in out and '% flagged' in out and 'TTA sd' in out
    before = (tmp / 'out' / 'a_trust.tif').read_bytes()
    assert main(args) == 2  # outputs exist: refused before any work
    assert 'already exists' in capsys.readouterr().err and (tmp / 'out' / 'a_trust.tif').read_bytes() == before


def test_evaluate_reports_consistency(tiny_model):
    model, tmp = tiny_model
    table = evaluate_synthetic(model, tmp / 'hr', 'em', tmp / 'ev', progress=False, figures=False)
    assert {'consistency_chi2', 'flagged_pct'} <= set(table.columns) and table.consistency_chi2.gt(0).all()
    summary = pd.read_csv(tmp / 'ev' / 'summary.csv')
    assert 'flagged_pct_mean' in summary.columns


def test_cli_trust_refuses_zarr(tiny_model, capsys):
    from pssr.cli import main
    from pssr.predict import write_ome_zarr
    model, tmp = tiny_model
    src = tmp / 'v.zarr'
    write_ome_zarr(src, np.ones((2, 16, 16), np.float32), pixel_size=0.2)
    assert main(['predict', str(model), str(src), '-o', str(tmp / 'zout'), '-q', '--trust']) == 2
    assert 'does not take OME-Zarr' in capsys.readouterr().err and not (tmp / 'zout' / 'v_pssr.zarr').exists()
