"Statistical, file, CLI and fault tests for pssr.noisefit (fitting a detector model to real low-resolution images)."
import time
import numpy as np
import pytest

from pssr.io import percentile_range
from pssr.crappify import PhysicalCrappifier, get_crappifier
from pssr.noisefit import fit_crappifier, fit_noise


from test_crappify import assert_input_error, cell, run_cli  # the same fixture and helpers as the crappifier tests


# ---------------------------------------------------------------- fitting

def _scene(cell):
    return 0.02 + 0.98 * np.clip(cell, 0, 1) * np.linspace(0.05, 1, cell.shape[1])

@pytest.mark.parametrize('photons,read,gain,offset,seed', [(60, 3, 2.5, 100, 0), (15, 1.5, 0.8, 500, 1), (200, 6, 4, 1000, 2)])
def test_fit_recovers_camera(cell, photons, read, gain, offset, seed):
    scene = _scene(cell)
    raw = PhysicalCrappifier(scale=1, photons=photons, read_noise=read, gain=gain, offset=offset, bits=16).adu(scene, seed).astype(np.uint16)
    lo, hi = percentile_range(raw)
    t = time.time()
    for hr in (None, scene):
        c = fit_crappifier(raw, hr=hr, offset=offset)
        assert abs(c.gain / gain - 1) < 0.1, (hr is None, c)
        assert abs(c.read_noise / read - 1) < 0.1, (hr is None, c)
        assert abs(c.photons / ((hi - offset) / gain) - 1) < 0.1
        assert c.bits == 16 and c.scale == 1
    assert time.time() - t < 5

@pytest.mark.parametrize('read', [0.5, 2, 8])
def test_fit_default_offset_reproduces_adu_relation(cell, read):
    scene = _scene(cell)
    m = 3 * 40 * scene + 100                                   # true mean ADU
    raw = PhysicalCrappifier(scale=1, photons=40, read_noise=read, gain=3, offset=100).adu(scene, 0).astype(np.uint16)
    lo, hi = percentile_range(raw)
    f, c = fit_noise(raw), fit_crappifier(raw)
    D = hi - lo
    if f['b'] >= 0:
        assert c.offset == pytest.approx(lo) and c.photons == pytest.approx(1 / f['a'])
        assert c.read_noise == pytest.approx(np.sqrt(f['b']) / f['a'])
    mm = np.linspace(lo, hi, 5)  # the crappifier's detector obeys the fitted relation exactly
    np.testing.assert_allclose(c.gain * (mm - c.offset) + c.gain ** 2 * c.read_noise ** 2, f['a'] * D * (mm - lo) + f['b'] * D ** 2, rtol=1e-6)
    adu = c.adu((m - c.offset) / (c.gain * c.photons), 1)    # and simulates the camera's noise
    v_model, v_true = ((adu - m) ** 2).mean(), (3 * (m - 100) + 9 * read ** 2).mean()
    assert abs(v_model / v_true - 1) < 0.1

def test_fit_with_scale_from_pair(cell):
    hr = _scene(cell)[:352, :352]
    lr = PhysicalCrappifier(scale=2, photons=50, read_noise=2, gain=2, offset=100).adu(hr, 0).astype(np.uint16)
    c = fit_crappifier(lr, hr=hr, scale=2, offset=100)
    assert c.scale == 2 and abs(c.gain / 2 - 1) < 0.1 and abs(c.read_noise / 2 - 1) < 0.15

def test_fit_from_file_and_cli(tmp_path, cell):
    raw = PhysicalCrappifier(scale=1, photons=60, read_noise=3, gain=2.5, offset=100).adu(_scene(cell), 0).astype(np.uint16)
    from PIL import Image
    Image.fromarray(raw).save(tmp_path / 'lr.png')
    assert run_cli(['fit-crappifier', str(tmp_path / 'lr.png'), '--offset', '100', '-o', str(tmp_path / 'fit.json')]) == 0
    c = get_crappifier(tmp_path / 'fit.json')
    assert isinstance(c, PhysicalCrappifier) and abs(c.gain / 2.5 - 1) < 0.1

def test_fit_bad_input():
    assert_input_error(fit_crappifier, np.full((128, 128), 7.0))
    assert_input_error(fit_crappifier, np.zeros((8, 8)) + np.eye(8))
    x = np.random.default_rng(0).random((64, 64)); x[3, 3] = np.nan
    assert_input_error(fit_crappifier, x)


def test_old_import_path_still_works():
    from pssr.crappify import fit_crappifier as old
    assert old is fit_crappifier
