"Registration of real LR/HR pairs: `pssr register` end to end, its outputs and exit codes."
import subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from pssr.data import synthetic
from pssr.io import read_image, write_tiff
from pssr.register import Similarity, simulate_pair, register_pair


def pssr(*args):
    return subprocess.run([str(Path(sys.executable).parent/'pssr'), *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope='module')
def pairs(tmp_path_factory):
    d = tmp_path_factory.mktemp('pairs')
    hr = synthetic('cell', n=1, size=256, seed=1)[0]
    lr = simulate_pair(hr, Similarity(2.0, 1.7, (1.5, -2.0)), (136, 136))
    write_tiff(d/'lr'/'a.tif', (lr * 2000 + 100).astype(np.uint16), 0.17)
    write_tiff(d/'hr'/'a.tif', (hr * 3000).astype(np.uint16), 0.1)
    write_tiff(d/'lr'/'b.tif', (lr * 2000 + 100).astype(np.uint16), 0.17)
    write_tiff(d/'hr'/'b.tif', (synthetic('fluo', n=1, size=256, seed=3)[0] * 3000).astype(np.uint16), 0.1)
    return d


def test_register_cli(pairs):
    out = pairs/'out'
    r = pssr('register', pairs/'lr', pairs/'hr', '-o', out, '-q')
    assert r.returncode == 0, r.stderr
    assert 'b: ' in r.stderr and 'do not show the same field' in r.stderr  # the wrong field is refused with a one-line message
    rep = pd.read_csv(out/'registration.csv')
    assert list(rep.status) == ['ok', 'refused']
    a = rep.iloc[0]
    assert a.out_scale == 2 and a.ratio_source == 'pixel sizes'  # 1.7x resampled to the nearest integer scale
    assert abs(a.measured_scale - 1.7) < 0.01 and abs(a.rotation_deg - 2.0) < 0.2 and a.correlation > 0.9
    lr, lm = read_image(out/'lr'/'a.tif'); hr, hm = read_image(out/'hr'/'a.tif')
    assert hr.shape == (2 * lr.shape[0], 2 * lr.shape[1])
    assert (lm.dtype, hm.dtype) == ('uint16', 'uint16')
    assert abs(lm.pixel_size - 0.17) < 1e-6 and abs(hm.pixel_size - 0.085) < 1e-6
    assert not (out/'b.tif').exists() and not (out/'lr'/'b.tif').exists()
    # an existing output is not replaced without --overwrite
    r = pssr('register', pairs/'lr', pairs/'hr', '-o', out, '-q')
    assert r.returncode == 2 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert pssr('register', pairs/'lr', pairs/'hr', '-o', out, '-q', '--overwrite').returncode == 0


def test_register_cli_errors(pairs, tmp_path):
    r = pssr('register', pairs/'lr', tmp_path/'missing', '-o', tmp_path/'o')
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    # only the wrong field: nothing can be registered -> exit 2, no output
    (tmp_path/'lr').mkdir(); (tmp_path/'hr').mkdir()
    for s in ('lr', 'hr'): (tmp_path/s/'b.tif').write_bytes((pairs/s/'b.tif').read_bytes())
    r = pssr('register', tmp_path/'lr', tmp_path/'hr', '-o', tmp_path/'o2', '-q')
    assert r.returncode == 2 and 'no pair could be registered' in r.stderr and not (tmp_path/'o2').exists()
    assert pssr('register', pairs/'lr', pairs/'hr', '-o', tmp_path/'o3', '--min-corr', '-1').returncode == 2


@pytest.mark.parametrize('t', [Similarity(0.0, 1.0, (3.3, -0.6)), Similarity(-4.0, 3.1, (0.7, 5.2))])
def test_register_pair_recovers(t):
    hr = synthetic('fluo', n=1, size=384, seed=2)[0]
    lr = simulate_pair(hr, t, (int(384 / t.scale) - 16,) * 2)
    got = register_pair(lr, hr, ratio=round(t.scale)).transform
    assert abs(got.angle - t.angle) < 0.2 and abs(got.scale / t.scale - 1) < 0.005
    assert np.abs(np.array(got.shift) - np.array(t.shift)).max() < 0.2
