"Hallucination guard (`pssr.evaluate.trust`): consistent restorations pass, invented structure is flagged; `pssr predict --trust`, `pssr evaluate`."
import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage

from pssr.crappify import downsample, get_crappifier
from pssr.data import synthetic, write_synthetic
from pssr.evaluate import (clean_degradation, consistency, evaluate_synthetic, model_degradation, trust, trust_warning,
                           TRUST_THRESHOLD)
from pssr.io import PssrInputError, read_image, write_tiff

torch.set_num_threads(1)


def invent_dots(hr, n=30, seed=0):
    "`hr` with bright dots added: structure no input shows."
    out, r = hr.copy(), np.random.default_rng(seed)
    for y, x in r.integers(8, min(hr.shape) - 8, (n, 2)): out[y - 2:y + 3, x - 2:x + 3] += 1.0
    return out


@pytest.mark.parametrize('kind', ['fluo', 'em'])
def test_truth_passes_invention_flagged(kind):
    "The ground truth is at least as consistent as bilinear; the same image with invented dots is flagged, on the dots."
    hr = synthetic(kind, n=1, size=192, seed=3)[0].astype(np.float64)
    deg = clean_degradation(None, 4)
    lr = deg(hr)
    _, ok = trust(lr, hr, deg)
    fake = invent_dots(hr)
    tmap, bad = trust(lr, fake, deg)
    assert ok['consistency_gain'] > 0 and trust_warning(ok) is None
    assert bad['consistency_gain'] < TRUST_THRESHOLD and trust_warning(bad, 'x').startswith('warning: x:')
    assert tmap[fake > hr + 0.5].mean() > 3 * tmap[fake == hr].mean()


def test_heavy_noise_limit():
    "Documented limit: bilinear keeps the input's noise, so even the noise-free truth scores below it on a very noisy input."
    hr = synthetic('em', n=1, size=256, seed=1)[0]
    crap = get_crappifier('em', 2)
    lr = crap(hr, np.random.default_rng(0))
    assert trust(lr, hr, clean_degradation(crap))[1]['consistency_gain'] < 0


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
    assert 'consistency' in out and 'vs bilinear' in out and 'TTA sd' in out
    before = (tmp / 'out' / 'a_trust.tif').read_bytes()
    assert main(args) == 2  # outputs exist: refused before any work
    assert 'already exists' in capsys.readouterr().err and (tmp / 'out' / 'a_trust.tif').read_bytes() == before


def test_evaluate_reports_consistency(tiny_model):
    model, tmp = tiny_model
    table = evaluate_synthetic(model, tmp / 'hr', 'em', tmp / 'ev', progress=False, figures=False)
    assert {'consistency_psnr', 'consistency_gain'} <= set(table.columns)
    assert (table[table.method == 'bilinear'].consistency_gain == 0).all()
    summary = pd.read_csv(tmp / 'ev' / 'summary.csv')
    assert 'consistency_gain_mean' in summary.columns


def test_cli_trust_refuses_zarr(tiny_model, capsys):
    from pssr.cli import main
    from pssr.predict import write_ome_zarr
    model, tmp = tiny_model
    src = tmp / 'v.zarr'
    write_ome_zarr(src, np.ones((2, 16, 16), np.float32), pixel_size=0.2)
    assert main(['predict', str(model), str(src), '-o', str(tmp / 'zout'), '-q', '--trust']) == 2
    assert 'does not take OME-Zarr' in capsys.readouterr().err and not (tmp / 'zout' / 'v_pssr.zarr').exists()
