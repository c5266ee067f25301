"""Cross-modality path from the command line: `pssr register` -> `pssr train --pairs` (pixel and `--gan`) -> `pssr evaluate`,
on widefield->SIM-like pairs with a non-integer pixel-size ratio (1.7x), rotation, shift and 16-bit files."""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np, pandas as pd, pytest
from scipy import ndimage

from pssr.data import synthetic
from pssr.evaluate import TRUST_AREA
from pssr.io import read_image, write_tiff
from pssr.register import Similarity, simulate_pair

RATIO, LR_PX, HR_PX = 1.7, 0.17, 0.1  # µm: the files' pixel sizes give the non-integer ratio


def pssr(*args):
    return subprocess.run([str(Path(sys.executable).parent/'pssr'), *map(str, args)], capture_output=True, text=True,
                           env={**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'})


def widefield_sim_pairs(folder:Path, seeds, size=192):
    "`folder/lr`, `folder/hr`: uint16 pairs; the LR is a blurred (widefield-like), rotated, shifted, 1.7x coarser view of the HR."
    n = int(size / RATIO) - 4
    for i, seed in enumerate(seeds):
        hr = synthetic('fluo', n=1, size=size, seed=seed)[0]
        t = Similarity(1.5 - i, RATIO, (1.0 + 0.3 * i, -1.5))
        lr = simulate_pair(ndimage.gaussian_filter(hr, 2.0), t, (n, n), noise=0.02, seed=seed)
        write_tiff(folder/'lr'/f'f{seed}.tif', np.clip(lr * 3000 + 200, 0, 65535).astype(np.uint16), LR_PX)
        write_tiff(folder/'hr'/f'f{seed}.tif', (hr * 20000 + 500).astype(np.uint16), HR_PX)
    return folder/'lr', folder/'hr'


@pytest.fixture(scope='module')
def registered(tmp_path_factory):
    d = tmp_path_factory.mktemp('xmod')
    out = {}
    for part, seeds in (('train', (0, 1, 2)), ('test', (10,))):
        lr, hr = widefield_sim_pairs(d/'raw'/part, seeds)
        r = pssr('register', lr, hr, '-o', d/part, '-q')
        assert r.returncode == 0, r.stderr
        out[part] = d/part
    return d, out


def test_register_reports_non_integer_ratio(registered):
    _, out = registered
    rep = pd.read_csv(out['train']/'registration.csv')
    assert (rep.status == 'ok').all() and (rep.out_scale == 2).all() and (rep.ratio_source == 'pixel sizes').all()
    assert np.allclose(rep.measured_scale, RATIO, rtol=0.005)
    lr, lm = read_image(out['train']/'lr'/'f0.tif'); hr, hm = read_image(out['train']/'hr'/'f0.tif')
    assert (lm.dtype, hm.dtype) == ('uint16', 'uint16') and hr.shape == (2 * lr.shape[0], 2 * lr.shape[1])
    assert abs(hm.pixel_size - LR_PX / 2) < 1e-6
    # the fitted forward model: a 2 HR px blur seen at the 1.7x HR grid resampled to 2x is about 2 * 2 / 1.7 px
    assert np.allclose(rep.blur_sigma, 2 * 2 / RATIO, atol=0.6), rep.blur_sigma.tolist()
    assert (out['train']/'forward_model.json').is_file()


def train_and_evaluate(d:Path, out:dict, name:str, *extra) -> pd.DataFrame:
    "`pssr train --pairs` on the registered training pairs, `pssr evaluate` on the registered test pair: the summary by method."
    r = pssr('train', '--lr-dir', out['train']/'lr', '--hr-dir', out['train']/'hr', '--scale', '2', '--arch', 'unet_small', '--size', '64',
             '--bs', '4', '--lr-max', '4e-3', '--name', name, '--models-dir', d/'models', *extra)
    assert r.returncode == 0, r.stderr[-2000:]
    model = d/'models'/f'{name}.pth'
    assert model.exists() and (d/'models'/f'{name}.json').exists()
    r = pssr('evaluate', '--model', model, '--lr-dir', out['test']/'lr', '--hr-dir', out['test']/'hr', '-o', d/f'ev_{name}', '-q')
    assert r.returncode == 0, r.stderr[-2000:]
    return pd.read_csv(d/f'ev_{name}'/'summary.csv').set_index('method')


def test_register_train_evaluate_beats_bilinear(registered):
    d, out = registered
    s = train_and_evaluate(d, out, 'pixel', '--tiles', '24', '--epochs', '6')
    assert s.loc['model', 'psnr_mean'] > s.loc['bilinear', 'psnr_mean'] + 0.1, s.to_string()
    assert s.loc['model', 'ssim_mean'] > s.loc['bilinear', 'ssim_mean']
    # the guard re-degrades with the forward model `pssr register` fitted (blur + binning): a correct deblurring is consistent
    assert s.loc['model', 'flagged_pct_mean'] <= TRUST_AREA, s.to_string()
    assert np.isfinite(s.loc['model', 'frc_px_mean'])


def test_register_train_gan_evaluate(registered):
    "The adversarial option on the same path, for a tiny budget: it trains, saves the generator and evaluates."
    d, out = registered
    s = train_and_evaluate(d, out, 'gan', '--tiles', '8', '--epochs', '1', '--gan', '--gan-epochs', '1')
    assert json.loads((d/'models'/'gan.json').read_text())['config']['loss'] == 'gan'
    assert np.isfinite(s.loc['model', ['psnr_mean', 'ssim_mean', 'frc_px_mean', 'consistency_chi2_mean']].astype(float)).all()
