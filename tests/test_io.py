"Fault and format tests for pssr.io: round trips, CZI/OME/PNG variants, every bad-input error, fuzzing."
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from pssr.io import (PMAX, PMIN, ImageMeta, PssrInputError, atomic_write, check_image, check_ndim, check_not_constant,
                     denormalize, dihedral, frame_window, list_images, match_pairs, normalize, normalize_percentile,
                     percentile_range, read_image, read_ome_zarr, read_plane, read_stack, shared_data_dir, undo_dihedral,
                     write_ome_zarr, write_tiff)

pyczi = pytest.importorskip('pylibCZIrw.czi')  # dev dependency, used only to make CZI fixtures

SHAPES = {'YX': (9, 11), 'ZYX': (3, 9, 11), 'TYX': (4, 9, 11), 'CYX': (2, 9, 11), 'ZCYX': (3, 2, 9, 11),
          'TZYX': (2, 3, 9, 11), 'TCYX': (2, 3, 9, 11), 'TZCYX': (2, 3, 2, 9, 11)}
DTYPES = (np.uint8, np.uint16, np.float32)


def random_image(rng, shape, dtype):
    "Pixels spanning the range of `dtype` (floats: negative and fractional values too)."
    if np.dtype(dtype).kind == 'f': return rng.normal(0, 1000, shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def make_czi(path, data, scale=0.0, names=None):
    "Write `data` (T, C, Z, Y, X) as a CZI with pylibCZIrw; `scale` is written as-is into Scaling (metres per spec)."
    with pyczi.create_czi(str(path), exist_ok=True) as f:
        for t in range(data.shape[0]):
            for c in range(data.shape[1]):
                for z in range(data.shape[2]):
                    f.write(data[t, c, z][..., None], plane={'T': t, 'C': c, 'Z': z})
        f.write_metadata(document_name='test', channel_names=dict(enumerate(names or [])), scale_x=scale, scale_y=scale)
    return Path(path)


def assert_input_error(path, match, fn, *args, **kwargs):
    "`fn(*args)` raises PssrInputError whose one-line message starts with `path` and contains `match`."
    with pytest.raises(PssrInputError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert msg.startswith(str(path)) and match in msg and '\n' not in msg, msg
    return info.value


# --- round trips -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize('axes', SHAPES)
def test_tiff_round_trip(tmp_path, rng, axes, dtype):
    x = random_image(rng, SHAPES[axes], dtype)
    p = write_tiff(tmp_path/'x.tif', x, pixel_size=0.0042, axes=axes)
    y, m = read_image(p, channel='all')
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x.astype(np.float32))
    assert (m.axes, m.shape, m.dtype, m.path) == (axes, x.shape, np.dtype(dtype).name, str(p))
    assert m.pixel_size == pytest.approx(0.0042, rel=1e-6)
    with tifffile.TiffFile(p) as tif:  # what Fiji reads
        assert tif.is_imagej and tif.imagej_metadata['unit'] == 'um'


@pytest.mark.parametrize('axes', ['ZYX', 'TZCYX'])
def test_select_planes_removes_axes(tmp_path, rng, axes):
    x = random_image(rng, SHAPES[axes], np.uint16)
    p = write_tiff(tmp_path/'x.tiff', x, axes=axes)
    y, m = read_image(p, channel=1 if 'C' in axes else None, z=-1)
    expect = x[..., -1, 1, :, :] if 'C' in axes else x[-1]
    np.testing.assert_array_equal(y, expect.astype(np.float32))
    assert m.axes == axes.replace('Z', '').replace('C', '') and m.pixel_size is None


def test_write_tiff_reorders_axes_and_converts_types(tmp_path, rng):
    x = rng.normal(size=(2, 3, 8, 8))  # float64, axes C Z
    y, m = read_image(write_tiff(tmp_path/'x.tif', x, axes='czyx'), channel='all')
    np.testing.assert_allclose(y, np.moveaxis(x, 0, 1).astype(np.float32))
    assert m.axes == 'ZCYX' and m.dtype == 'float32'
    y, m = read_image(write_tiff(tmp_path/'b.tif', np.eye(5, dtype=bool)))
    assert m.dtype == 'uint8' and y.max() == 1
    with pytest.raises(ValueError, match='do not fit'):
        write_tiff(tmp_path/'bad.tif', x, axes='ZYX')
    with pytest.raises(ValueError, match='axes= is needed'):
        write_tiff(tmp_path/'bad.tif', x)


def test_cell_round_trip(tmp_path, cell):
    img, m = read_image(write_tiff(tmp_path/'cell.tif', cell, pixel_size=0.1))
    np.testing.assert_array_equal(img, cell)
    assert m == ImageMeta('YX', pytest.approx(0.1), 'uint8', str(tmp_path/'cell.tif'), cell.shape, None)


# --- metadata from other writers ---------------------------------------------------------------------------------

def test_ome_tiff_pixel_size_units_and_channel_names(tmp_path, rng):
    x = random_image(rng, (2, 3, 16, 16), np.uint16)
    md = {'axes': 'CZYX', 'PhysicalSizeX': 0.5, 'PhysicalSizeY': 0.5, 'Channel': {'Name': ['DAPI', 'GFP']}}
    tifffile.imwrite(tmp_path/'a.ome.tif', x, ome=True, metadata=md)
    y, m = read_image(tmp_path/'a.ome.tif', channel='GFP')
    np.testing.assert_array_equal(y, x[1])
    assert (m.axes, m.pixel_size, m.channels) == ('ZYX', 0.5, ('DAPI', 'GFP'))
    assert_input_error(tmp_path/'a.ome.tif', '2 channels (0=DAPI, 1=GFP)', read_image, tmp_path/'a.ome.tif')
    assert_input_error(tmp_path/'a.ome.tif', "no channel named 'RFP'", read_image, tmp_path/'a.ome.tif', channel='RFP')
    tifffile.imwrite(tmp_path/'nm.ome.tif', x[0], ome=True,
                     metadata={'axes': 'ZYX', 'PhysicalSizeX': 8.0, 'PhysicalSizeXUnit': 'nm'})
    assert read_image(tmp_path/'nm.ome.tif')[1].pixel_size == pytest.approx(0.008)


@pytest.mark.parametrize('unit,res,expect', [('CENTIMETER', 20000, 0.5), ('INCH', 2540, 10.), ('MILLIMETER', 250, 4.),
                                             ('INCH', 72, None), ('INCH', 96, None), ('NONE', 4, None)])
def test_tiff_resolution_tags(tmp_path, rng, unit, res, expect):
    tifffile.imwrite(tmp_path/'r.tif', random_image(rng, (8, 8), np.uint8), resolution=(res, res), resolutionunit=unit)
    size = read_image(tmp_path/'r.tif')[1].pixel_size
    assert size == (pytest.approx(expect) if expect else None)


@pytest.mark.parametrize('unit,expect', [('micron', 0.25), ('\\u00B5m', 0.25), ('nm', 0.00025), ('pixel', None)])
def test_imagej_units(tmp_path, rng, unit, expect):
    "ImageJ writes the unit into its header and pixels-per-unit into the resolution tag."
    tifffile.imwrite(tmp_path/'ij.tif', random_image(rng, (3, 8, 8), np.uint16), imagej=True,
                     resolution=(4, 4), metadata={'axes': 'ZYX', 'unit': unit})
    y, m = read_image(tmp_path/'ij.tif')
    assert m.axes == 'ZYX' and m.pixel_size == (pytest.approx(expect) if expect else None)


def test_plain_multipage_and_rgb_tiff(tmp_path, rng):
    x = random_image(rng, (5, 8, 8), np.uint16)
    tifffile.imwrite(tmp_path/'pages.tif', x, photometric='minisblack', metadata=None)
    y, m = read_image(tmp_path/'pages.tif', z=3)
    np.testing.assert_array_equal(y, x[3])
    rgb = random_image(rng, (8, 8, 3), np.uint8)
    tifffile.imwrite(tmp_path/'rgb.tif', rgb, photometric='rgb')
    assert_input_error(tmp_path/'rgb.tif', '3 channels (0=R, 1=G, 2=B)', read_image, tmp_path/'rgb.tif')
    np.testing.assert_array_equal(read_image(tmp_path/'rgb.tif', channel=1)[0], rgb[..., 1])


# --- CZI ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def czi_file(tmp_path, rng):
    "A T=2, C=2, Z=3 uint16 CZI with 0.1 µm pixels (stored in metres, as ZEN does) and named channels."
    x = random_image(rng, (2, 2, 3, 12, 20), np.uint16)
    return make_czi(tmp_path/'stack.czi', x, 0.1e-6, names=['DAPI', 'GFP']), x


def test_czi_select_channel_z_t(czi_file):
    p, x = czi_file
    y, m = read_image(p, channel=1, z=2, t=0)
    np.testing.assert_array_equal(y, x[0, 1, 2])
    assert (m.axes, m.dtype, m.channels) == ('YX', 'uint16', ('DAPI', 'GFP'))
    assert m.pixel_size == pytest.approx(0.1)
    y, m = read_image(p, channel='dapi', t=1)
    np.testing.assert_array_equal(y, x[1, 0])
    assert m.axes == 'ZYX'
    y, m = read_image(p, channel='all')
    np.testing.assert_array_equal(y, np.moveaxis(x, 1, 2))
    assert m.axes == 'TZCYX'


def test_czi_errors(czi_file):
    p, _ = czi_file
    assert_input_error(p, 'image has 2 channels (0=DAPI, 1=GFP) and no channel was chosen', read_image, p)
    assert_input_error(p, 'channel=2 is out of range', read_image, p, channel=2)
    assert_input_error(p, 'z=5 is out of range', read_image, p, channel=0, z=5)


def test_czi_scaling_written_in_um(tmp_path, rng):
    "pylibCZIrw documents scale_x in µm; the CZI spec says metres. Values > 1 mm are taken as µm."
    x = random_image(rng, (1, 1, 1, 8, 8), np.uint8)
    assert read_image(make_czi(tmp_path/'um.czi', x, 0.25))[1].pixel_size == pytest.approx(0.25)
    assert read_image(make_czi(tmp_path/'none.czi', x, 0.0))[1].pixel_size is None


def test_czi_truncated(czi_file, tmp_path):
    p, _ = czi_file
    data = p.read_bytes()
    for cut in (0.2, 0.5, 0.9):
        q = tmp_path/f'cut{cut}.czi'
        q.write_bytes(data[:int(len(data) * cut)])
        assert_input_error(q, 'truncated or corrupt', read_image, q, channel=0)


# --- PNG / JPEG --------------------------------------------------------------------------------------------------

def test_palette_png_colour_lut_gives_index(tmp_path, rng):
    idx = rng.integers(0, 256, (16, 24)).astype(np.uint8)
    im = Image.fromarray(idx, mode='L').convert('P')
    im.putpalette([v for i in range(256) for v in (i, 0, i // 2)])  # a magenta LUT, not the identity
    im.save(tmp_path/'p.png')
    y, m = read_image(tmp_path/'p.png')
    np.testing.assert_array_equal(y, idx)
    assert (m.axes, m.dtype, m.pixel_size) == ('YX', 'uint8', None)
    assert np.abs(np.asarray(Image.open(tmp_path/'p.png').convert('L')) - y).max() > 50


def test_palette_png_grey_palette_gives_grey(tmp_path, rng):
    "A grey image stored with a shuffled grey palette: the intensity is the palette's grey, not the index."
    grey = rng.integers(0, 256, (16, 24)).astype(np.uint8)
    order = rng.permutation(256).astype(np.uint8)      # palette entry k shows grey order[k]
    index = np.argsort(order)[grey].astype(np.uint8)   # so pixel with grey g stores index k where order[k] == g
    im = Image.fromarray(index, mode='P')
    im.putpalette([int(v) for g in order for v in (g, g, g)])
    im.save(tmp_path/'g.png')
    np.testing.assert_array_equal(read_image(tmp_path/'g.png')[0], grey)


def test_grey_alpha_rgb_and_16bit_png(tmp_path, rng):
    g = rng.integers(0, 256, (10, 12)).astype(np.uint8)
    Image.fromarray(np.stack([g, np.zeros_like(g)], -1), mode='LA').save(tmp_path/'la.png')
    np.testing.assert_array_equal(read_image(tmp_path/'la.png')[0], g)
    rgba = rng.integers(0, 256, (10, 12, 4)).astype(np.uint8)
    Image.fromarray(rgba, mode='RGBA').save(tmp_path/'rgba.png')
    e = assert_input_error(tmp_path/'rgba.png', '3 channels (0=R, 1=G, 2=B)', read_image, tmp_path/'rgba.png')
    assert 'channel=' in e.hint
    np.testing.assert_array_equal(read_image(tmp_path/'rgba.png', channel=0)[0], rgba[..., 0])
    g16 = rng.integers(0, 65536, (10, 12)).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path/'g16.png')
    y, m = read_image(tmp_path/'g16.png')
    np.testing.assert_array_equal(y, g16)
    assert m.dtype == 'uint16'


def test_jpeg(tmp_path, cell, rng):
    Image.fromarray(cell).save(tmp_path/'c.jpg', quality=95)
    y, m = read_image(tmp_path/'c.jpg')
    assert m.axes == 'YX' and y.shape == cell.shape and np.abs(y - cell).mean() < 3
    Image.fromarray(rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)).save(tmp_path/'c.jpeg')
    assert_input_error(tmp_path/'c.jpeg', '3 channels', read_image, tmp_path/'c.jpeg')


# --- bad input ---------------------------------------------------------------------------------------------------

def test_every_bad_file_names_itself(tmp_path, rng):
    good = write_tiff(tmp_path/'good.tif', random_image(rng, (3, 32, 32), np.uint16), axes='ZYX').read_bytes()
    Image.fromarray(random_image(rng, (32, 32), np.uint8)).save(tmp_path/'good.png')
    (tmp_path/'empty.tif').write_bytes(b'')
    (tmp_path/'doc.docx').write_bytes(b'PK')
    (tmp_path/'cut.tif').write_bytes(good[:len(good) // 2])
    (tmp_path/'header.tif').write_bytes(good[:64])
    (tmp_path/'cut.png').write_bytes((tmp_path/'good.png').read_bytes()[:100])
    (tmp_path/'text.png').write_bytes(b'this is not a png')
    (tmp_path/'folder.tif').mkdir()
    write_tiff(tmp_path/'nan.tif', np.array([[0, np.nan], [np.inf, 1]], np.float32))
    cases = {'missing.tif': 'file not found', 'empty.tif': 'file is empty', 'doc.docx': "unsupported file type '.docx'",
             'cut.tif': 'truncated or corrupt', 'header.tif': 'truncated or corrupt', 'cut.png': 'truncated or corrupt',
             'text.png': 'truncated or corrupt', 'folder.tif': 'is a folder', 'nan.tif': '1 NaN and 1 infinite'}
    for name, match in cases.items():
        assert_input_error(tmp_path/name, match, read_image, tmp_path/name)


def test_helper_checks(tmp_path):
    assert_input_error('c.tif', 'image is constant (every pixel is 3)', check_not_constant, np.full((4, 4), 3.), 'c.tif')
    check_not_constant(np.arange(4.), 'c.tif')
    m = ImageMeta('TZYX', path='s.tif', shape=(2, 3, 4, 4))
    e = assert_input_error('s.tif', "axes 'TZYX' (4D) but 2D or 3D is needed", check_ndim, np.zeros(m.shape), m, (2, 3))
    assert 'z=' in e.hint
    e = assert_input_error('s.tif', 'but 3D is needed', check_ndim, np.zeros((4, 4)), 's.tif', 3)
    assert 'stack' in e.hint
    assert_input_error('n.tif', 'image has no pixels', check_image, np.zeros((0, 3)), 'n.tif')


def test_error_is_one_line_value_error():
    e = PssrInputError(Path('/a/b.tif'), 'bad\nthing.', 'fix\nit')
    assert str(e) == '/a/b.tif: bad thing. fix it' and isinstance(e, ValueError) and e.path == Path('/a/b.tif')


# --- writing safely ----------------------------------------------------------------------------------------------

def test_write_tiff_refuses_inputs_and_wrong_suffix(tmp_path, cell):
    src = write_tiff(tmp_path/'in.tif', cell)
    before = src.read_bytes()
    os.symlink(src, tmp_path/'link.tif')
    (tmp_path/'sub').mkdir()
    for target in (src, tmp_path/'sub'/'..'/'in.tif', tmp_path/'link.tif', Path(os.path.relpath(src))):
        assert_input_error(target, 'refusing to overwrite an input file', write_tiff, target, cell[::2], inputs=[str(src)])
    assert src.read_bytes() == before
    for bad in ('out.png', 'out.tif.json', 'out'):
        assert_input_error(tmp_path/bad, 'must be a .tif or .tiff', write_tiff, tmp_path/bad, cell)
    write_tiff(tmp_path/'OUT.TIFF', cell, inputs=[src])  # upper-case suffix is fine


def test_atomic_write_failure_leaves_nothing(tmp_path):
    out = tmp_path/'new'/'model.pth'
    with pytest.raises(KeyboardInterrupt), atomic_write(out) as f:
        f.write(b'partial'); raise KeyboardInterrupt
    assert not out.exists() and list(out.parent.iterdir()) == []
    with atomic_write(out) as f: f.write(b'done')
    assert out.read_bytes() == b'done'
    assert stat.S_IMODE(out.stat().st_mode) & 0o044  # readable by the group/others like a normal file, not 0600
    with pytest.raises(ValueError, match='write mode'):
        with atomic_write(out, 'ab'): pass


def test_atomic_write_failing_tiff_keeps_old_file(tmp_path, cell, monkeypatch):
    p = write_tiff(tmp_path/'r.tif', cell)
    before = p.read_bytes()
    def crash(f, *args, **kwargs): f.write(b'II*\x00 half a file'); raise OSError('disk full')
    monkeypatch.setattr(tifffile, 'imwrite', crash)
    with pytest.raises(OSError, match='disk full'):
        write_tiff(p, cell[::2])
    assert p.read_bytes() == before and sorted(q.name for q in tmp_path.iterdir()) == ['r.tif']


# --- folders -----------------------------------------------------------------------------------------------------

def test_list_images(tmp_path):
    for n in ('b10.tif', 'b9.tif', 'a.PNG', 'c.czi', 'd.jpeg', 'readme.md', '.hidden.tif'):
        (tmp_path/n).write_bytes(b'x')
    (tmp_path/'sub').mkdir(); (tmp_path/'sub'/'e.tiff').write_bytes(b'x')
    (tmp_path/'.git').mkdir(); (tmp_path/'.git'/'f.png').write_bytes(b'x')
    with pytest.warns(UserWarning, match='readme.md'):
        names = [p.name for p in list_images(tmp_path)]
    assert names == ['a.PNG', 'b9.tif', 'b10.tif', 'c.czi', 'd.jpeg']
    with warnings.catch_warnings(record=True):
        assert [p.name for p in list_images(tmp_path, recursive=True)][-1] == 'e.tiff'
    assert_input_error(tmp_path/'nope', 'folder not found', list_images, tmp_path/'nope')
    assert_input_error(tmp_path/'b9.tif', 'is not a folder', list_images, tmp_path/'b9.tif')
    (tmp_path/'empty').mkdir()
    assert_input_error(tmp_path/'empty', 'folder holds no images', list_images, tmp_path/'empty')


# --- normalisation -----------------------------------------------------------------------------------------------

def test_normalize_round_trip_and_constant(rng):
    x = rng.gamma(2., 300., (64, 64)).astype(np.float32)
    lo, hi = percentile_range(x)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(x, [PMIN, PMAX])), rel=1e-5)
    y = normalize_percentile(x)
    assert y.dtype == np.float32 and y.min() < 0 < 1 < y.max()  # not clipped
    np.testing.assert_allclose(denormalize(y, lo, hi), x, rtol=1e-4, atol=1e-2)
    flat = normalize_percentile(np.full((5, 5), 7, np.uint16))
    assert np.isfinite(flat).all() and (flat == 0).all()
    np.testing.assert_allclose(denormalize(flat, 7., 7.), 7.)


def test_shared_data_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv('PSSR_SHARED_DATA', str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.setenv('PSSR_SHARED_DATA', str(tmp_path/'missing'))
    assert shared_data_dir() is None


# --- fuzzing: random bytes only ever give PssrInputError ---------------------------------------------------------

MAGIC = {'.tif': [b'', b'II*\x00', b'MM\x00*'], '.czi': [b'', b'ZISRAWFILE'], '.png': [b'', b'\x89PNG\r\n\x1a\n'],
         '.jpg': [b'', b'\xff\xd8\xff']}


@pytest.mark.parametrize('suffix', MAGIC)
def test_random_bytes_raise_only_input_errors(tmp_path_factory, suffix):
    folder = tmp_path_factory.mktemp('fuzz')

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(magic=st.sampled_from(MAGIC[suffix]), body=st.binary(min_size=0, max_size=600))
    def check(magic, body):
        p = folder/f'fuzz{suffix}'
        p.write_bytes(magic + body)
        try:
            y, m = read_image(p, channel='all')
        except PssrInputError as e:
            assert str(e).startswith(str(p)) and '\n' not in str(e)
        else:  # a valid image by chance: it must still be a proper result
            assert y.dtype == np.float32 and np.isfinite(y).all() and m.axes.endswith('YX')
    check()


def _valid_file_bytes(suffix, folder):
    "Bytes of a small valid file of type `suffix` to mutate."
    rng = np.random.default_rng(1)
    p = folder/f'valid{suffix}'
    if suffix == '.tif': write_tiff(p, random_image(rng, (2, 3, 16, 16), np.uint16), 0.1, 'ZCYX')
    elif suffix == '.czi': make_czi(p, random_image(rng, (1, 2, 2, 16, 16), np.uint16), 1e-7, ['a', 'b'])
    else: Image.fromarray(random_image(rng, (16, 16), np.uint8)).save(p)
    return p.read_bytes()


@pytest.mark.parametrize('suffix', MAGIC)
def test_damaged_files_raise_only_input_errors(tmp_path_factory, suffix):
    "Valid files cut short or with bytes overwritten: an input error or a finite float32 image, nothing else."
    folder = tmp_path_factory.mktemp('damage')
    good = _valid_file_bytes(suffix, folder)

    @settings(max_examples=50, deadline=None)
    @given(cut=st.integers(1, len(good)), pos=st.integers(0, len(good) - 1), patch=st.binary(min_size=0, max_size=8))
    def check(cut, pos, patch):
        data = bytearray(good)
        data[pos:pos + len(patch)] = patch
        p = folder/f'damaged{suffix}'
        p.write_bytes(bytes(data[:cut]))
        try:
            y, m = read_image(p, channel='all')
        except PssrInputError as e:
            assert str(e).startswith(str(p)) and '\n' not in str(e)
        else:
            assert y.dtype == np.float32 and np.isfinite(y).all() and m.axes.endswith('YX')
    check()


# --- moved into pssr.io: OME-Zarr, the normaliser's parts, one plane/stack, pairs, dihedral ops, frame windows ----------

def test_ome_zarr_round_trip(tmp_path):
    x = np.random.default_rng(0).random((3, 50, 70)).astype(np.float32)
    p = write_ome_zarr(tmp_path / 'v.ome.zarr', x, pixel_size=0.008, chunks=(1, 16, 32), axes='ZYX')
    a, meta = read_ome_zarr(p)
    np.testing.assert_array_equal(np.asarray(a[:]), x)
    assert meta.axes == 'ZYX' and abs(meta.pixel_size - 0.008) < 1e-12 and a.chunks == (1, 16, 32)
    assert (p / '.zattrs').exists() and (p / '0' / '.zarray').exists()
    assert [q.name for q in tmp_path.iterdir()] == ['v.ome.zarr']


def test_normalize_is_normalize_percentile_with_known_range():
    x = (np.random.default_rng(1).random((40, 30)) * 4000).astype(np.uint16)
    lo, hi = percentile_range(x)
    np.testing.assert_array_equal(normalize(x, lo, hi), normalize_percentile(x))
    np.testing.assert_allclose(denormalize(normalize(x, lo, hi), lo, hi), x, rtol=1e-5, atol=0.01)
    buf = x.astype(np.float32)
    assert normalize(buf, lo, hi, out=buf) is buf


def test_read_plane_and_stack(tmp_path):
    x = np.arange(2 * 3 * 6 * 5, dtype=np.uint16).reshape(2, 3, 6, 5)
    p = write_tiff(tmp_path / 'tz.tif', x, 0.1, 'TZYX')
    np.testing.assert_array_equal(read_plane(p, z=2, t=1)[0], x[1, 2])
    assert read_stack(p, t=1)[0].shape == (3, 6, 5)
    for f, kw in ((read_plane, dict(t=0)), (read_stack, {})):
        with pytest.raises(PssrInputError, match='select one plane'): f(p, **kw)


def test_match_pairs_names_every_orphan(tmp_path):
    for sub, names in (('lr', 'abc'), ('hr', 'abd')):
        (tmp_path / sub).mkdir()
        for n in names: write_tiff(tmp_path / sub / f'{n}.tif', np.ones((4, 4), np.uint8))
    with pytest.raises(PssrInputError) as e: match_pairs(tmp_path / 'lr', tmp_path / 'hr')
    assert 'only in' in str(e.value) and ': c' in str(e.value) and ': d' in str(e.value) and '\n' not in str(e.value)
    (tmp_path / 'hr' / 'd.tif').rename(tmp_path / 'hr' / 'c.tif')
    assert [(l.stem, h.stem) for l, h in match_pairs(tmp_path / 'lr', tmp_path / 'hr')] == [('a', 'a'), ('b', 'b'), ('c', 'c')]


def test_dihedral_one_definition_for_arrays_and_tensors():
    torch = pytest.importorskip('torch')
    a = np.random.default_rng(2).random((2, 5, 7))
    ops = {dihedral(a, k).tobytes() + bytes(dihedral(a, k).shape) for k in range(8)}
    assert len(ops) == 8
    for k in range(8):
        np.testing.assert_array_equal(undo_dihedral(dihedral(a, k), k), a)
        np.testing.assert_array_equal(dihedral(torch.from_numpy(a), k).numpy(), dihedral(a, k))


def test_frame_window_reflects_at_the_ends():
    assert frame_window(0, 4, 5) == [2, 1, 0, 1, 2] and frame_window(3, 4, 5) == [1, 2, 3, 2, 1]
    assert frame_window(4, 9, 5) == [2, 3, 4, 5, 6] and frame_window(0, 1, 3) == [0, 0, 0]
