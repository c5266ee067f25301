"End-to-end, statistical, fidelity, CLI and fault tests for pssr.crappify (synthetic data and skimage.data.cell only)."
import argparse, json, pickle, time
import numpy as np
import pytest
from skimage import data as skdata
from skimage.util import random_noise
from skimage.filters import gaussian as sk_gaussian
from scipy import ndimage

from pssr.io import PssrInputError, read_image, write_tiff, normalize_percentile, percentile_range
from pssr.crappify import (Crappifier, EMCrappifier, FluoCrappifier, Poisson, AdditiveGaussian, SaltPepper, Blur,
                           Downsample, Compose, PhysicalCrappifier, crappify_em, crappify_fluo, get_crappifier,
                           crappify_folder, add_cli, downsample, gaussian)


@pytest.fixture(scope='module')
def cell():
    return normalize_percentile(skdata.cell().astype(np.float32))

FLAT = np.full((256, 256), 0.5)

def run_cli(argv):
    p = argparse.ArgumentParser(); sp = p.add_subparsers(); add_cli(sp)
    a = p.parse_args(argv)
    return a.func(a)

def assert_input_error(f, *args, **kw):
    with pytest.raises(PssrInputError) as e: f(*args, **kw)
    assert e.value.hint and '\n' not in str(e.value)
    return e.value

# ---------------------------------------------------------------- PSSR originals: same semantics as skimage/scipy

def _sk_rng(seed):
    return dict(rng=seed)

def pssr_em_reference(x, seed, scale=4):
    "PSSR's em_AG_D_sameas_preprint written with skimage/scipy (the reference semantics)."
    lvar = sk_gaussian(x, sigma=3)
    y = random_noise(x, mode='localvar', local_vars=np.maximum(lvar, 1e-12) * 0.05, **_sk_rng(seed))
    return ndimage.zoom(y, 1 / scale, order=1)

def pssr_fluo_reference(x, seed, scale=4):
    "PSSR's fluo_SP_AG_D_sameas_preprint (float input in [0, 1]) written with skimage/scipy."
    top = x.max()
    y = random_noise(x, mode='salt', amount=0.005, **_sk_rng(seed))
    y = random_noise(y, mode='pepper', amount=0.005, **_sk_rng(seed + 1))
    lvar = sk_gaussian(y, sigma=5) + 1e-10
    y = random_noise(y, mode='localvar', local_vars=lvar * 0.5, **_sk_rng(seed + 2))
    y = y / y.max() * top
    return ndimage.zoom(y, 1 / scale, order=1)

@pytest.mark.parametrize('ours,ref', [(EMCrappifier(align='corners'), pssr_em_reference),
                                      (FluoCrappifier(align='corners'), pssr_fluo_reference)])
def test_originals_match_skimage_reference(cell, ours, ref):
    "With align='corners' our crappifiers follow PSSR's skimage/zoom pipeline (same noise statistics)."
    x = np.clip(cell[:256, :256], 0, 1).astype(np.float64)
    a, b = ours(x, 0), ref(x, 0)
    assert a.shape == b.shape == (64, 64)
    clean = ndimage.zoom(x, 1 / 4, order=1)
    na, nb = a - clean, b - clean  # noise after downsampling
    assert abs(na.mean() - nb.mean()) < 0.01
    assert abs(na.std() / nb.std() - 1) < 0.08
    np.testing.assert_allclose(np.percentile(a, [5, 50, 95]), np.percentile(b, [5, 50, 95]), atol=0.03)

@pytest.mark.parametrize('c', [EMCrappifier(var=0, align='corners'), FluoCrappifier(var=0, salt=0, pepper=0, align='corners'),
                               Downsample(4, align='corners'),
                               PhysicalCrappifier(binning='bilinear', align='corners', psf_sigma=0, poisson=False,
                                                  read_noise=0, gain=1, offset=0, bits=None, photons=1)])
def test_corners_is_pssr_zoom_bit_for_bit(cell, c):
    "align='corners' downsamples exactly as PSSR's `ndimage.zoom(x, 1/scale, order=1)`."
    x = np.clip(cell[:256, :200], 0, 1).astype(np.float64)
    np.testing.assert_array_equal(c(x, 0), ndimage.zoom(x, 1 / 4, order=1).astype(np.float32))

@pytest.mark.parametrize('H', [32, 128, 200, 512])
def test_centers_exact_factor_on_ramp(H):
    "Centre alignment puts LR pixel i at HR coordinate 4i + 1.5 whatever the size; corners at i (H-1)/(h-1)."
    ramp = np.tile(np.arange(H, dtype=np.float64), (8, 1))
    i = np.arange(H // 4)
    np.testing.assert_allclose(downsample(ramp, 4)[0], 4 * i + 1.5, atol=1e-9)
    np.testing.assert_allclose(downsample(ramp.T, 4)[:, 0], 4 * i + 1.5, atol=1e-9)
    np.testing.assert_allclose(downsample(ramp, 4, align='corners')[0], i * (H - 1) / (H // 4 - 1), atol=1e-9)
    np.testing.assert_allclose(downsample(ramp, 3)[0, :H // 3], 3 * np.arange(H // 3) + 1, atol=1e-9)
    for c in (EMCrappifier(var=0), FluoCrappifier(var=0, salt=0, pepper=0), Downsample(4),
              PhysicalCrappifier(binning='bilinear', psf_sigma=0, poisson=False, read_noise=0, gain=1, offset=0, bits=None, photons=1)):
        np.testing.assert_allclose(c(ramp / H, 0)[0] * H, 4 * i + 1.5, atol=1e-4)

def test_centers_noise_variance_quartered():
    "Bilinear at the block centre is the mean of the 2x2 centre pixels: iid variance / 4."
    noise = np.random.default_rng(0).standard_normal((1024, 1024))
    assert downsample(noise, 4).var() == pytest.approx(0.25, rel=0.03)
    assert downsample(noise, 2).var() == pytest.approx(0.25, rel=0.03)
    assert downsample(noise, 3).var() == pytest.approx(1.0, rel=0.03)

def test_em_flat_field_moments():
    noise = EMCrappifier(scale=1)(FLAT, 0) - 0.5
    assert abs(noise.var() - 0.025) < 0.025 * 0.03
    assert abs(noise.mean()) < 2e-3
    assert abs((crappify_em(FLAT, 1) - 0.5).var() / (0.025 / 4) - 1) < 0.1   # centre alignment: 2x2 mean
    # PSSR's corner-aligned zoom samples at i * 255/63: each output mixes neighbours with weights (1-f, f)
    f = (np.arange(64) * 255 / 63) % 1
    k = ((1 - f) ** 2 + f ** 2).mean() ** 2
    assert abs((EMCrappifier(align='corners')(FLAT, 1) - 0.5).var() / (0.025 * k) - 1) < 0.1

def test_fluo_impulse_fractions_and_rescale():
    y = FluoCrappifier(scale=1, var=0)(FLAT, 0)
    assert abs((y == 0.5).mean() - 0.005) < 1e-3 and abs((y == 0).mean() - 0.005) < 1e-3
    assert FluoCrappifier(scale=1)(FLAT, 0).max() == pytest.approx(0.5)  # rescaled to the original maximum
    assert FluoCrappifier(scale=1, sp_first=False)(FLAT, 0).max() == pytest.approx(0.5)

# ---------------------------------------------------------------- statistics of the blocks

def test_poisson_variance_equals_mean():
    counts = Poisson(photons=200)(FLAT, 0) * 200
    assert abs(counts.var() / counts.mean() - 1) < 0.05
    assert abs(counts.mean() - 100) < 0.5

def test_poisson_intensity_mix():
    half = Poisson(photons=50, intensity=0.5)(FLAT, 0)
    full = Poisson(photons=50)(FLAT, 0)
    assert abs(half.std() / full.std() - 0.5) < 0.05

def test_read_noise_recovered():
    adu = PhysicalCrappifier(scale=1, poisson=False, read_noise=4, gain=1.5, offset=200, bits=None).adu(FLAT, 0)
    assert abs(adu.std() / 1.5 / 4 - 1) < 0.05
    g = AdditiveGaussian(0.07, clip=False)(FLAT, 0) - 0.5
    assert abs(g.std() / 0.07 - 1) < 0.05

@pytest.mark.parametrize('c', [EMCrappifier(), FluoCrappifier(), PhysicalCrappifier(), Downsample(3, 'area'),
                               Compose(Blur(1), Downsample(2), Downsample(2), Poisson(30))])
@pytest.mark.parametrize('shape', [(128, 128), (131, 97), (3, 64, 50)])
def test_shape_dtype_seed(c, shape):
    x = np.random.default_rng(0).random(shape)
    y = c(x, 0)
    assert y.shape == shape[:-2] + (shape[-2] // c.scale, shape[-1] // c.scale)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, c(x, 0))
    if not isinstance(c, Downsample): assert not np.array_equal(y, c(x, 1))

def test_generator_and_stack_frames_independent():
    rng = np.random.default_rng(5)
    a = EMCrappifier(scale=1)(FLAT, rng)
    b = EMCrappifier(scale=1)(FLAT, rng)          # the generator advanced
    assert not np.array_equal(a, b)
    s = PhysicalCrappifier(scale=2)(np.stack([FLAT] * 3), 0)
    assert abs(np.corrcoef(s[0].ravel(), s[1].ravel())[0, 1]) < 0.05

def test_spread_changes_strength():
    for c in (AdditiveGaussian(0.1, spread=0.5, clip=False), Poisson(50, spread=0.8)):
        sds = [c(FLAT, s).std() for s in range(8)]
        assert np.ptp(sds) / np.mean(sds) > 0.2
    sds = [Blur(2, spread=0.9)(np.random.default_rng(0).random((64, 64)), s).std() for s in range(6)]
    assert np.ptp(sds) > 0.01
    # a stack shares one strength per call: frame noise levels agree
    st = AdditiveGaussian(0.1, spread=0.9, clip=False)(np.stack([FLAT] * 4), 3)
    sd = (st - 0.5).std((1, 2))
    assert np.ptp(sd) / sd.mean() < 0.05

def test_physical_noiseless_is_pure_downsample(cell):
    pure = PhysicalCrappifier(scale=4, psf_sigma=0, poisson=False, read_noise=0, gain=2, offset=10, bits=None, photons=500)
    np.testing.assert_allclose(pure(cell, 0), downsample(cell, 4, 'area'), atol=1e-5)
    blurred = PhysicalCrappifier(scale=2, psf_sigma=1.5, poisson=False, read_noise=0, bits=None)
    np.testing.assert_allclose(blurred(cell, 0), downsample(gaussian(cell.astype(np.float64), 1.5), 2, 'area'), atol=1e-5)

def test_physical_quantisation_and_psf_from_na():
    adu = PhysicalCrappifier(scale=1, photons=5000, gain=1, offset=0, bits=12).adu(np.ones((32, 32)), 0)
    assert adu.max() == 4095 and np.all(adu == np.round(adu))
    c = PhysicalCrappifier(na=1.2, wavelength=600, pixel_size=0.05)
    assert c.sigma_px == pytest.approx(0.21 * 0.6 / 1.2 / 0.05)

# ---------------------------------------------------------------- config round trip

def test_json_round_trip(tmp_path):
    cs = [EMCrappifier(2), EMCrappifier(align='corners'), FluoCrappifier(sp_first=False, align='corners'),
          PhysicalCrappifier(photons=12, bits=None, spread=0.3), PhysicalCrappifier(binning='bilinear', align='corners'),
          Compose(Blur(0.5, spread=0.2), Downsample(4, 'area'), Downsample(1, align='corners'), SaltPepper(0.01), AdditiveGaussian(0.03))]
    for i, c in enumerate(cs):
        assert Crappifier.from_dict(json.loads(json.dumps(c.to_dict()))) == c
        p = c.save(tmp_path / f'c{i}.json')
        assert get_crappifier(p) == c and get_crappifier(str(p)).scale == c.scale
        assert pickle.loads(pickle.dumps(c)) == c

def test_old_json_without_align_loads_centers():
    for c in (EMCrappifier(), FluoCrappifier(), Downsample(4), PhysicalCrappifier(binning='bilinear')):
        d = {k: v for k, v in c.to_dict().items() if k != 'align'}   # written before `align` existed
        assert Crappifier.from_dict(d).align == 'centers' and Crappifier.from_dict(d) == c
    assert EMCrappifier(align='corners') != EMCrappifier()

def test_get_crappifier_names():
    assert get_crappifier('em', 2) == EMCrappifier(2)
    assert get_crappifier('FLUO').scale == 4
    assert isinstance(get_crappifier('physical', 3), PhysicalCrappifier) and get_crappifier('physical', 3).scale == 3
    assert get_crappifier('none', 2) == Downsample(2)

# ---------------------------------------------------------------- bad input

def test_bad_input_errors(tmp_path):
    assert_input_error(EMCrappifier, scale=0)
    assert_input_error(Downsample, 0.5)
    for make in (EMCrappifier, FluoCrappifier, Downsample, PhysicalCrappifier):
        assert 'alignment' in str(assert_input_error(make, align='edges'))
    assert_input_error(downsample, np.zeros((8, 8)), 2, 'bilinear', 'middle')
    assert_input_error(get_crappifier, 'em', scale=-1)
    assert_input_error(EMCrappifier(scale=4), np.zeros((3, 64)))                  # smaller than the scale
    assert_input_error(FluoCrappifier(), np.full((32, 32), np.nan))
    e = assert_input_error(get_crappifier, 'crappy')
    assert 'em' in e.hint
    assert_input_error(get_crappifier, tmp_path / 'missing.json')
    assert_input_error(PhysicalCrappifier, photons=-3)
    assert_input_error(Poisson, photons=-3)
    assert_input_error(PhysicalCrappifier, photons=0)
    assert_input_error(EMCrappifier(), np.zeros((2, 2, 8, 8)))
    (tmp_path / 'bad.json').write_text('{not json')
    assert_input_error(get_crappifier, tmp_path / 'bad.json')

# ---------------------------------------------------------------- tiles, stacks, CLI

@pytest.fixture
def hr_folder(tmp_path, cell):
    src = tmp_path / 'src'; src.mkdir()
    write_tiff(src / 'cell.tif', np.pad(cell, 150), pixel_size=0.05)
    write_tiff(src / 'movie.tif', np.stack([np.roll(cell, k, 1) for k in range(6)]), pixel_size=0.1, axes='TYX')
    return src

def test_crappify_folder_pairs(tmp_path, hr_folder):
    out = tmp_path / 'out'
    pairs = crappify_folder(hr_folder, out, EMCrappifier(4), tile=64, n_tiles=4, seed=0, progress=False)
    assert len(pairs) == 8
    for hp, lp in pairs:
        assert hp.name == lp.name and hp.parent == out / 'hr' and lp.parent == out / 'lr'
        h, hm = read_image(hp); l, lm = read_image(lp)
        assert h.shape == (64, 64) and l.shape == (16, 16)
        src_ps = 0.05 if hp.name.startswith('cell') else 0.1
        assert hm.pixel_size == pytest.approx(src_ps, rel=1e-3) and lm.pixel_size == pytest.approx(4 * src_ps, rel=1e-3)
    assert get_crappifier(out / 'crappifier.json') == EMCrappifier(4)
    assert len((out / 'tiles.csv').read_text().splitlines()) == 9
    # reproducible
    again = crappify_folder(hr_folder, tmp_path / 'again', EMCrappifier(4), tile=64, n_tiles=4, seed=0, progress=False)
    np.testing.assert_array_equal(read_image(pairs[3][1])[0], read_image(again[3][1])[0])

def test_tiles_avoid_background(tmp_path, cell):
    from skimage.filters import threshold_otsu
    src = tmp_path / 'sparse'; src.mkdir()
    img = np.zeros((600, 600), np.float32); img[400:520, 50:170] = cell[:120, :120] + 0.5
    write_tiff(src / 'sparse.tif', img)
    pairs = crappify_folder(src, tmp_path / 'o', 'none', tile=64, n_tiles=8, seed=0, scale=4, progress=False)
    x = normalize_percentile(img); thr = threshold_otsu(x); target = 0.3 * (x > thr).mean()
    assert all((read_image(h)[0] > thr).mean() >= target for h, _ in pairs)

def test_multiframe_windows(tmp_path, hr_folder):
    src = tmp_path / 'movies'; src.mkdir()
    movie = np.stack([np.roll(skdata.cell().astype(np.float32), 3 * k, 1) for k in range(7)])
    write_tiff(src / 'm.tif', movie, axes='TYX')
    pairs = crappify_folder(src, tmp_path / 'mf', 'fluo', tile=64, n_tiles=3, n_frames=5, progress=False)
    norm = normalize_percentile(movie)
    for hp, lp in pairs:
        l, lm = read_image(lp); h, _ = read_image(hp)
        assert l.shape == (5, 16, 16) and lm.axes == 'TYX' and h.shape == (64, 64)
        assert not np.allclose(l[0], l[1])
        hits = [(k, y, x) for k, y, x in np.argwhere(np.isclose(norm, h[0, 0]))
                if y + 64 <= norm.shape[1] and x + 64 <= norm.shape[2] and np.allclose(norm[k, y:y + 64, x:x + 64], h)]
        assert hits and any(2 <= k <= 4 for k, _, _ in hits)  # the HR tile is the centre of a full 5-frame window
    e = assert_input_error(crappify_folder, hr_folder, tmp_path / 'x', 'em', tile=64, n_tiles=1, n_frames=7, progress=False)
    assert 'frames' in str(e)

def test_cli_crappify(tmp_path, hr_folder):
    for name in ('em', 'fluo', 'physical'):
        assert run_cli(['crappify', str(hr_folder), str(tmp_path / name), '--crappifier', name, '--tile', '64',
                        '--n-tiles', '2', '--scale', '2']) == 0
        assert len(list((tmp_path / name / 'lr').glob('*.tif'))) == 4
        assert read_image(next((tmp_path / name / 'lr').glob('*.tif')))[0].shape == (32, 32)
    PhysicalCrappifier(scale=4, photons=5).save(tmp_path / 'c.json')
    assert run_cli(['crappify', str(hr_folder), str(tmp_path / 'j'), '--crappifier', str(tmp_path / 'c.json'),
                    '--tile', '64', '--n-tiles', '1', '--frames', '3']) == 0
    assert read_image(next((tmp_path / 'j' / 'lr').glob('movie*.tif')))[0].shape == (3, 16, 16)

def test_cli_errors_exit_2(tmp_path, hr_folder, capsys):
    cli = pytest.importorskip('pssr.cli')
    if not hasattr(cli, 'main'): pytest.skip('pssr.cli.main not written yet')
    try: rc = cli.main(['crappify', str(hr_folder), str(tmp_path / 'o'), '--crappifier', 'nonsense'])
    except ImportError as e: pytest.skip(f'another module is not ready: {e}')
    assert rc == 2 and 'unknown crappifier' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: cli.main(['crappify', str(hr_folder), str(tmp_path / 'o'), '--scale', '0'])
    assert e.value.code == 2
    assert cli.main(['crappify', str(tmp_path / 'nowhere'), str(tmp_path / 'o')]) == 2
