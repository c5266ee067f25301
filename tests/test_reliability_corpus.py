"""The wider corpus of issue 10: every option of every subcommand with NaN, inf, 0, negative, wrong-type and huge values;
every input kind (missing, empty, folder for file, corrupt TIFF/PNG/CZI/OME-Zarr, NaN/inf/constant, 1x1, 3D-5D, RGB,
bool, complex, int64, non-ASCII names, symlinks); every output kind (exists, is an input, under an input, a file where a
folder is needed, under a file, on a read-only file system). Same assertions as `test_reliability.py`: exit code, one
stderr line naming the file or option, no traceback, inputs unchanged, nothing partial left behind."""
import os, re, shutil
from pathlib import Path

import numpy as np
import pytest

from pssr.io import write_tiff
from test_reliability import TRAIN, model_dir, run, snapshot, world  # noqa: F401 (fixtures)

@pytest.fixture
def more(world):
    "`world` plus odd inputs: shapes, types, corrupt formats, odd names, symlinks."
    w, rng = world, np.random.default_rng(1)
    img = lambda n: (rng.random((n, n)) * 200 + 20).astype(np.float32)
    write_tiff(w/'one.tif', np.ones((1, 1), np.float32) * 5)
    write_tiff(w/'tiny.tif', img(4))
    write_tiff(w/'stack.tif', np.stack([img(16)] * 3), axes='ZYX')
    write_tiff(w/'d4.tif', rng.random((2, 3, 16, 16)).astype(np.float32), axes='TZYX')
    write_tiff(w/'d5.tif', rng.random((2, 2, 2, 16, 16)).astype(np.float32), axes='TZCYX')
    write_tiff(w/'inf.tif', np.where(np.eye(16) > 0, np.inf, 1).astype(np.float32))
    import tifffile
    tifffile.imwrite(w/'bool.tif', rng.random((16, 16)) > 0.5)
    tifffile.imwrite(w/'cplx.tif', (rng.random((16, 16)) + 1j).astype(np.complex64))
    tifffile.imwrite(w/'i64.tif', rng.integers(0, 1000, (16, 16)).astype(np.int64))
    tifffile.imwrite(w/'u16.tif', rng.integers(0, 60000, (16, 16)).astype(np.uint16))
    from PIL import Image
    Image.fromarray(rng.integers(0, 255, (16, 16)).astype(np.uint8)).save(w/'ok.png')
    (w/'trunc.png').write_bytes((w/'ok.png').read_bytes()[:60])
    (w/'bad.czi').write_bytes(b'ZISRAWFILE' + b'\0' * 50)
    (w/'bad.zarr').mkdir(); (w/'bad.zarr'/'.zattrs').write_text('{not json')
    (w/'empty.zarr').mkdir()
    (w/'dir.tif').mkdir()
    (w/'emptydir').mkdir()
    (w/'txtdir').mkdir(); (w/'txtdir'/'a.txt').write_text('x')
    (w/'ünï cödé').mkdir(); write_tiff(w/'ünï cödé'/'bild 1.tif', img(64)); write_tiff(w/'ünï cödé'/'bild 2.tif', img(64))
    write_tiff(w/'éa b.tif', img(16))
    (w/'link.tif').symlink_to(w/'a.tif')
    (w/'hrlink').symlink_to(w/'hr', target_is_directory=True)
    (w/'mixed').mkdir(); write_tiff(w/'mixed'/'g.tif', img(64)); write_tiff(w/'mixed'/'n.tif', np.full((64, 64), np.nan, np.float32))
    (w/'sub').mkdir(); (w/'sub'/'hr').mkdir(); write_tiff(w/'sub'/'hr'/'h0.tif', img(64))
    (w/'cfg_inf.json').write_text('{"hr": "hr", "lr": "Infinity"}')
    (w/'cfg_key.json').write_text('{"hr": "hr", "frobnicate": 1}')
    (w/'cfg_size.json').write_text('{"hr": "hr", "size": -4}')
    (w/'broken.json').write_text('{"hr": ')
    (w/'empty.json').write_text('')
    (w/'cnan.json').write_text('{"name": "PhysicalCrappifier", "gain": NaN}')
    (w/'exists.zip').write_bytes(b'PK\x05\x06' + b'\0' * 18)
    (w/'m2.zip').write_bytes(b'PK\x03\x04 not really a zip')
    (w/'m2.tif').write_bytes((w/'a.tif').read_bytes())
    (w/'mdir.pth').mkdir()
    (w/'lnk').mkdir(); (w/'lnk'/'p1_pssr.tif').symlink_to(w/'lr'/'p1.tif')
    (w/'tr').mkdir(); write_tiff(w/'tr'/'a_trust.tif', img(32))
    (w/'rg').mkdir(); (w/'rg'/'lr').mkdir(); (w/'rg'/'hr').mkdir(); (w/'rg'/'hr2').mkdir()
    from scipy import ndimage as ndi
    field = ndi.gaussian_filter(rng.random((64, 64)), 3).astype(np.float32) * 1000  # one field seen by two instruments
    write_tiff(w/'rg'/'lr'/'r.tif', field.reshape(32, 2, 32, 2).mean((1, 3))); write_tiff(w/'rg'/'hr'/'r.tif', field); write_tiff(w/'rg'/'hr2'/'other.tif', img(64))
    return w

P = ['predict', 'm2.pth']
C = ['crappify', 'hr', 'out', '--tile', '16', '--n-tiles', '1', '--crappifier', 'none', '--scale', '2']
F = ['fit-crappifier', 'lrimg.tif', '-o', 'c.json']
E = ['evaluate', '--hr', 'hr', '--crappifier', 'none', '--scale', '2', '-o', 'ev']
D = ['demo', '-o', 'dm', '--quick']
B = ['export-bmz', 'm2.pth']
R = ['register', 'rg/lr', 'rg/hr', '-o', 'reg']

def opts(cmd, option, values, names=None):
    "Cases giving `option` each bad value in `values`."
    return [(f"{cmd[0]}{option}={v}", cmd + [option, v], 2, names or option) for v in values]

NUM = ['nan', 'inf', '-inf', 'abc', '-1']
CASES = [
    *opts(C, '--scale', NUM + ['0', '1.5']), *opts(C, '--tile', NUM + ['1e9']), *opts(C, '--n-tiles', NUM + ['2.5']),
    *opts(C, '--seed', ['nan', 'abc', '-1']), *opts(C, '--frames', NUM + ['0', '4']),
    *opts(F, '--scale', NUM + ['0']), *opts(F, '--offset', ['nan', 'inf', 'abc']),
    *opts(TRAIN, '--size', NUM + ['0']), *opts(TRAIN, '--size', ['100000'], 'h0.tif'), *opts(TRAIN, '--bs', NUM + ['0']), *opts(TRAIN, '--epochs', ['nan', 'inf', '-1', 'abc']),
    *opts(TRAIN, '--minutes', ['nan', 'inf', '0', 'abc']), *opts(TRAIN, '--lr', ['nan', 'inf', '-1', 'abc']),
    *opts(TRAIN, '--wd', ['inf', '-1', 'abc']), *opts(TRAIN, '--valid-pct', ['nan', '0', '1', '-0.1', '2']),
    *opts(TRAIN, '--tiles', NUM + ['0']), *opts(TRAIN[:-2], '--scale', NUM + ['0']), *opts(TRAIN, '--frames', ['0', '2', 'nan']),
    *opts(TRAIN, '--seed', ['nan', 'abc']), *opts(TRAIN + ['--gan'], '--gan-weight', ['nan', '-1']), *opts(TRAIN + ['--gan'], '--gan-epochs', ['-1', 'nan']),
    *opts(TRAIN + ['--fnsm'], '--fnsm-radius', ['nan', '0', '-1']), *opts(TRAIN + ['--fnsm'], '--na', ['nan', '0', '-1']),
    *opts(TRAIN + ['--fnsm'], '--wavelength', ['nan', '0', '-1']), *opts(TRAIN, '--hr-pixel-size', ['nan', '0', '-1']),
    *opts(TRAIN, '--loss', ['bogus']), *opts(TRAIN, '--mode', ['bogus']), *opts(TRAIN, '--preset', ['bogus']),
    *opts(TRAIN, '--device', ['gpu', '', 'tpu:0']),
    *opts(P + ['a.tif', '-o', 'out'], '--tile', ['nan', 'inf', '-1', 'abc', '1.5']), *opts(P + ['a.tif', '-o', 'out'], '--overlap', ['nan', 'abc']),
    *opts(P + ['a.tif', '-o', 'out'], '--bs', ['nan', '-1', 'abc']), *opts(P + ['a.tif', '-o', 'out'], '--max-memory', ['abc', '0', '-1G', 'nan']),
    *opts(P + ['a.tif', '-o', 'out'], '--dtype', ['int8']), *opts(P + ['a.tif', '-o', 'out'], '--workers', ['0', '-1', 'nan']),
    *opts(P + ['a.tif', '-o', 'out'], '--device', ['cuda:0', 'tpu']),
    *opts(E, '--scale', NUM + ['0'])[:6], *opts(E, '--pixel-size', ['nan', 'inf', '0', '-1', 'abc']), *opts(E, '--seed', ['nan', '-1']),
    *opts(E, '--align', ['middle']),
    *opts(D, '--minutes', ['nan', 'inf', '0', '-1', 'abc']), *opts(D, '--epochs', ['nan', '-1', 'abc']), *opts(D, '--size', ['nan', '0', '-1']), *opts(D[:3] + ['--epochs', '1'], '--size', ['7']),
    *opts(D, '--seed', ['nan', '-1']), *opts(D, '--device', ['tpu', 'gpu']),
    *opts(R, '--ratio', NUM + ['0']), *opts(R, '--scale', NUM + ['0']), *opts(R, '--min-corr', ['nan', '2', '-2', 'abc']),
    # inputs of every kind
    ('predict-d5', P + ['d5.tif', '-o', 'out'], 2, 'd5.tif'),
    ('predict-inf', P + ['inf.tif', '-o', 'out'], 2, 'inf.tif'),
    ('predict-cplx', P + ['cplx.tif', '-o', 'out'], 2, 'cplx.tif'),
    ('predict-trunc-png', P + ['trunc.png', '-o', 'out'], 2, 'trunc.png'),
    ('predict-bad-czi', P + ['bad.czi', '-o', 'out'], 2, 'bad.czi'),
    ('predict-bad-zarr', P + ['bad.zarr', '-o', 'out'], 2, 'bad.zarr'),
    ('predict-empty-zarr', P + ['empty.zarr', '-o', 'out'], 2, 'empty.zarr'),
    ('predict-dir-as-file', P + ['dir.tif', '-o', 'out'], 2, 'dir.tif'),
    ('predict-emptydir', P + ['emptydir', '-o', 'out'], 2, 'emptydir'),
    ('predict-rgb-channel-9', P + ['rgb.tif', '-o', 'out', '--channel', '9'], 2, 'rgb.tif'),
    ('predict-rgb-channel-name', P + ['rgb.tif', '-o', 'out', '--channel', 'GFP'], 2, 'GFP'),
    ('predict-model-tif', ['predict', 'm2.tif', 'a.tif', '-o', 'out'], 2, 'm2.tif'),
    ('predict-model-dir', ['predict', 'mdir.pth', 'a.tif', '-o', 'out'], 2, 'mdir.pth'),
    ('predict-model-json', ['predict', 'badc.json', 'a.tif', '-o', 'out'], 2, 'badc'),
    ('predict-model-zip', ['predict', 'm2.zip', 'a.tif', '-o', 'out'], 2, 'm2.zip'),
    ('predict-model-empty', ['predict', 'empty.tif', 'a.tif', '-o', 'out'], 2, 'empty.tif'),
    ('predict-same-stem-ext', P + ['ok.png', 'other/a.tif', 'a.tif', '-o', 'out'], 2, 'a.tif'),
    ('predict-link-and-target', P + ['a.tif', 'link.tif', 'other/a.tif', '-o', 'out'], 2, 'a.tif'),
    ('crappify-file-as-dir', ['crappify', 'a.tif', 'out', '--tile', '16'], 2, 'a.tif'),
    ('crappify-emptydir', ['crappify', 'emptydir', 'out', '--tile', '16'], 2, 'emptydir'),
    ('crappify-txtdir', ['crappify', 'txtdir', 'out', '--tile', '16'], 2, 'txtdir'),
    ('crappify-nan-image', ['crappify', 'mixed', 'out', '--tile', '16', '--n-tiles', '1', '--crappifier', 'none', '--scale', '2'], 2, 'n.tif'),
    ('crappify-crappifier-nan', C[:-4] + ['--crappifier', 'cnan.json'], 2, 'cnan.json'),
    ('crappify-crappifier-broken', C[:-4] + ['--crappifier', 'broken.json'], 2, 'broken.json'),
    ('crappify-crappifier-empty', C[:-4] + ['--crappifier', 'empty.json'], 2, 'empty.json'),
    ('crappify-crappifier-missing', C[:-4] + ['--crappifier', 'nope.json'], 2, 'nope.json'),
    ('crappify-fit-missing', ['crappify', 'hr', 'out', '--tile', '16', '--fit', 'nope.tif'], 2, 'nope.tif'),
    ('crappify-fit-const', ['crappify', 'hr', 'out', '--tile', '16', '--fit', 'const.tif'], 2, 'const.tif'),
    ('crappify-fit-is-in-out', ['crappify', 'hr', 'out', '--tile', '16', '--fit', 'corrupt.tif'], 2, 'corrupt.tif'),
    ('crappify-frames-on-2d', C + ['--frames', '3'], 2, 'frames'),
    ('fit-empty', ['fit-crappifier', 'empty.tif', '-o', 'c.json'], 2, 'empty.tif'),
    ('fit-nan', ['fit-crappifier', 'nan.tif', '-o', 'c.json'], 2, 'nan.tif'),
    ('fit-one-px', ['fit-crappifier', 'one.tif', '-o', 'c.json'], 2, 'one.tif'),
    ('fit-dir', ['fit-crappifier', 'hr', '-o', 'c.json'], 2, 'hr'),
    ('fit-rgb', ['fit-crappifier', 'rgb.tif', '-o', 'c.json'], 2, '--channel'),
    ('fit-hr-missing', F + ['--hr', 'nope.tif'], 2, 'nope.tif'),
    ('fit-hr-corrupt', F + ['--hr', 'corrupt.tif'], 2, 'corrupt.tif'),
    ('fit-hr-wrong-shape', F + ['--hr', 'a.tif', '--scale', '2'], 2, 'lrimg.tif'),
    ('fit-out-is-hr', ['fit-crappifier', 'lrimg.tif', '--hr', 'a.tif', '-o', 'a.tif', '--overwrite'], 2, 'a.tif'),
    ('fit-out-link-to-input', ['fit-crappifier', 'a.tif', '-o', 'link.tif', '--overwrite'], 2, 'link.tif'),
    ('train-hr-file', TRAIN[:2] + ['a.tif'] + TRAIN[3:], 2, 'a.tif'),
    ('train-hr-empty', TRAIN[:2] + ['emptydir'] + TRAIN[3:], 2, 'emptydir'),
    ('train-hr-nan-image', TRAIN[:2] + ['mixed'] + TRAIN[3:], 2, 'n.tif'),
    ('train-hr-const', TRAIN[:2] + ['bad'] + TRAIN[3:], 2, 'c.tif'),
    ('train-pairs-missing', ['train', '--pairs', 'nope', 'hr', '--epochs', '1', '--scale', '2'], 2, 'nope'),
    ('train-pairs-dup-stems', ['train', '--pairs', 'pairs/lr', 'pairs/hr', '--epochs', '1', '--scale', '2', '--size', '32'], 2, 'q.t'),
    ('train-pairs-no-match', ['train', '--pairs', 'rg/lr', 'rg/hr2', '--epochs', '1', '--scale', '2', '--size', '32'], 2, 'rg'),
    ('train-noisy-missing', ['train', '--noisy', 'nope', '--epochs', '1'], 2, 'nope'),
    ('train-noisy-empty', ['train', '--noisy', 'emptydir', '--epochs', '1'], 2, 'emptydir'),
    ('train-hr-and-pairs', TRAIN + ['--pairs', 'lr', 'hr'], 2, '--hr'),
    ('train-config-inf', ['train', '--config', 'cfg_inf.json'], 2, 'cfg_inf.json'),
    ('train-config-key', ['train', '--config', 'cfg_key.json'], 2, 'cfg_key.json'),
    ('train-config-size', ['train', '--config', 'cfg_size.json'], 2, 'cfg_size.json'),
    ('train-config-broken', ['train', '--config', 'broken.json'], 2, 'broken.json'),
    ('train-config-empty', ['train', '--config', 'empty.json'], 2, 'empty.json'),
    ('train-config-dir', ['train', '--config', 'hr'], 2, 'hr'),
    ('train-crappifier-nan', TRAIN[:-4] + ['--crappifier', 'cnan.json', '--scale', '2'], 2, 'cnan.json'),
    ('train-crappifier-unknown', TRAIN[:-4] + ['--crappifier', 'blurry', '--scale', '2'], 2, 'blurry'),
    ('train-weights-missing', TRAIN + ['--weights', 'nope.pth'], 2, 'nope.pth'),
    ('train-weights-corrupt', TRAIN + ['--weights', 'trunc.pth'], 2, 'trunc.pth'),
    ('train-init-missing', TRAIN + ['--init-model', 'nope.pth'], 2, 'nope.pth'),
    ('train-init-trunc', TRAIN + ['--init-model', 'trunc.pth'], 2, 'trunc.pth'),
    ('train-init-badnorm', TRAIN + ['--init-model', 'badnorm.pth'], 2, 'badnorm.json'),
    ('train-match-missing', TRAIN + ['--match', 'nope.tif'], 2, 'nope.tif'),
    ('train-match-const', TRAIN + ['--match', 'const.tif'], 2, 'const.tif'),
    ('train-name-empty', TRAIN + ['--name', ''], 2, '--name'),
    ('train-name-slash', TRAIN + ['--name', '../evil'], 2, '--name'),
    ('evaluate-hr-file', ['evaluate', '--hr', 'a.tif', '--crappifier', 'none', '--scale', '2', '-o', 'ev'], 2, 'a.tif'),
    ('evaluate-hr-empty', ['evaluate', '--hr', 'emptydir', '--crappifier', 'none', '--scale', '2', '-o', 'ev'], 2, 'emptydir'),
    ('evaluate-hr-nan', ['evaluate', '--hr', 'mixed', '--crappifier', 'none', '--scale', '2', '-o', 'ev'], 2, 'n.tif'),
    ('evaluate-lr-missing', ['evaluate', '--lr', 'nope', '--hr', 'hr', '-o', 'ev'], 2, 'nope'),
    ('evaluate-lr-no-match', ['evaluate', '--lr', 'rg/lr', '--hr', 'rg/hr2', '-o', 'ev'], 2, 'rg'),
    ('evaluate-lr-wrong-size', ['evaluate', '--lr', 'pairs/lr', '--hr', 'dup', '-o', 'ev', '--scale', '2'], 2, 'pairs'),
    ('evaluate-crappifier-list', ['evaluate', '--hr', 'hr', '--crappifier', 'list.json', '-o', 'ev'], 2, 'list.json'),
    ('evaluate-crappifier-nan', ['evaluate', '--hr', 'hr', '--crappifier', 'cnan.json', '-o', 'ev'], 2, 'cnan.json'),
    ('evaluate-model-missing', ['evaluate', '--model', 'nope.pth', '--hr', 'hr', '--crappifier', 'none', '-o', 'ev'], 2, 'nope.pth'),
    ('evaluate-model-nojson', ['evaluate', '--model', 'nojson.pth', '--hr', 'hr', '--crappifier', 'none', '-o', 'ev'], 2, 'nojson'),
    ('evaluate-model-badnorm', ['evaluate', '--model', 'badnorm.pth', '--hr', 'hr', '--crappifier', 'none', '-o', 'ev'], 2, 'badnorm.json'),
    ('evaluate-no-mode', ['evaluate', '--hr', 'hr', '-o', 'ev'], 2, '--crappifier'),
    ('demo-data-file', ['demo', '--data', 'a.tif', '-o', 'dm', '--quick'], 2, 'a.tif'),
    ('demo-data-empty', ['demo', '--data', 'emptydir', '-o', 'dm', '--quick'], 2, 'emptydir'),
    ('demo-data-const', ['demo', '--data', 'bad', '-o', 'dm', '--quick'], 2, 'c.tif'),
    ('demo-data-nan', ['demo', '--data', 'mixed', '-o', 'dm', '--quick'], 2, 'n.tif'),
    ('demo-crappifier-list', D + ['--crappifier', 'list.json'], 2, 'list.json'),
    ('demo-crappifier-nan', D + ['--crappifier', 'cnan.json'], 2, 'cnan.json'),
    ('export-missing', ['export-bmz', 'nope.pth', '-o', 'm.zip'], 2, 'nope.pth'),
    ('export-trunc', ['export-bmz', 'trunc.pth', '-o', 'm.zip'], 2, 'trunc.pth'),
    ('export-nojson', ['export-bmz', 'nojson.pth', '-o', 'm.zip'], 2, 'nojson'),
    ('export-badnorm', ['export-bmz', 'badnorm.pth', '-o', 'm.zip'], 2, 'badnorm.json'),
    ('export-model-tif', ['export-bmz', 'a.tif', '-o', 'm.zip'], 2, 'a.tif'),
    ('register-lr-missing', ['register', 'nope', 'rg/hr', '-o', 'reg'], 2, 'nope'),
    ('register-hr-file', ['register', 'rg/lr', 'a.tif', '-o', 'reg'], 2, 'a.tif'),
    ('register-no-match', ['register', 'rg/lr', 'rg/hr2', '-o', 'reg'], 2, 'rg'),
    ('register-empty', ['register', 'emptydir', 'rg/hr', '-o', 'reg'], 2, 'emptydir'),
    ('register-nan', ['register', 'mixed', 'hr', '-o', 'reg'], 2, 'mixed'),
    # outputs of every kind
    ('predict-out-exists', P + ['lr/p0.tif', '-o', 'lr'], 2, '--overwrite'),
    ('predict-outdir-is-input-file', P + ['a.tif', '-o', 'a.tif'], 2, 'a.tif'),
    ('predict-outdir-readonly', P + ['a.tif', '-o', '/proc/pssr-out'], 2, '/proc'),
    ('predict-outdir-empty-name', P + ['a.tif', '-o', ''], 2, 'out'),
    ('crappify-out-readonly', C[:2] + ['/proc/pssr-out'] + C[3:], 2, '/proc'),
    ('crappify-out-is-link-to-input', C[:2] + ['hrlink'] + C[3:] + ['--overwrite'], 2, 'input'),
    ('crappify-out-holds-input', ['crappify', 'sub/hr', 'sub'] + C[3:] + ['--overwrite'], 2, 'input'),
    ('crappify-fit-inside-out', ['crappify', 'hr', 'ünï cödé', '--fit', 'ünï cödé/bild 1.tif', '--tile', '16', '--overwrite'], 2, 'input'),
    ('fit-out-readonly', ['fit-crappifier', 'lrimg.tif', '-o', '/proc/c.json'], 2, '/proc'),
    ('train-models-readonly', TRAIN + ['--models-dir', '/proc/pssr-models'], 2, '/proc'),
    ('train-models-is-link-to-hr', TRAIN + ['--models-dir', 'hrlink'], 2, 'input'),
    ('train-model-json-is-config', TRAIN + ['--config', 'cfg_nan.json', '--models-dir', '.', '--name', 'cfg_nan'], 2, 'cfg_nan'),
    ('evaluate-out-readonly', E[:-1] + ['/proc/pssr-ev'], 2, '/proc'),
    ('evaluate-out-under-file', E[:-1] + ['afile/ev'], 2, 'afile'),
    ('evaluate-out-in-hr', E[:-1] + ['hr/ev'], 2, 'input'),
    ('evaluate-out-holds-lr', ['evaluate', '--lr', 'sub/hr', '--hr', 'hr', '-o', 'sub', '--overwrite'], 2, 'input'),
    ('demo-out-readonly', ['demo', '-o', '/proc/pssr-demo', '--quick'], 2, '/proc'),
    ('demo-out-under-file', ['demo', '-o', 'afile/dm', '--quick'], 2, 'afile'),
    ('demo-out-link-to-data', ['demo', '--data', 'hr', '-o', 'hrlink', '--quick', '--overwrite'], 2, 'input'),
    ('export-out-exists', B + ['-o', 'exists.zip'], 2, '--overwrite'),
    ('export-out-is-model', B + ['-o', 'm2.pth', '--overwrite'], 2, 'm2.pth'),
    ('export-out-is-json', B + ['-o', 'm2.json', '--overwrite'], 2, 'm2.json'),
    ('export-out-folder', B + ['-o', 'existing'], 2, 'existing'),
    ('export-out-under-file', B + ['-o', 'afile/m.zip'], 2, 'afile'),
    ('export-bad-license', B + ['-o', 'm.zip', '--license', 'NOT-A-LICENSE', '--no-test'], 2, '--license'),
    ('export-out-readonly', B + ['-o', '/proc/m.zip'], 2, '/proc'),
    ('register-out-is-lr', ['register', 'rg/lr', 'rg/hr', '-o', 'rg/lr', '--overwrite'], 2, 'input'),
    ('register-out-holds-inputs', ['register', 'rg/lr', 'rg/hr', '-o', 'rg', '--overwrite'], 2, 'input'),
    ('register-out-exists', ['register', 'rg/lr', 'rg/hr', '-o', 'existing'], 2, '--overwrite'),
    ('register-out-file', ['register', 'rg/lr', 'rg/hr', '-o', 'afile'], 2, 'afile'),
    ('crappify-dup-stems', ['crappify', 'pairs/hr', 'out'] + C[3:], 2, 'q.t'),
    ('evaluate-hr-dup-stems', ['evaluate', '--hr', 'pairs/hr', '--crappifier', 'none', '--scale', '2', '-o', 'ev'], 2, 'q.t'),
    ('register-dup-stems', ['register', 'pairs/lr', 'pairs/hr', '-o', 'reg'], 2, 'q.t'),
    ('predict-out-is-link-to-input', P + ['lr/p1.tif', '-o', 'lnk', '--overwrite'], 2, 'p1'),
    ('predict-tta-out-is-input', P + ['lr/p0.tif', 'lr/p0_pssr_std.tif', '-o', 'lr', '--tta', '--overwrite'], 2, 'p0_pssr_std.tif'),
    ('predict-trust-out-exists', P + ['a.tif', '-o', 'tr', '--trust'], 2, '--overwrite'),
    ('train-pairs-wrong-scale', ['train', '--pairs', 'rg/lr', 'rg/hr', '--epochs', '1', '--scale', '4', '--size', '32', '--arch', 'unet_small'], 2, 'r.tif'),
    ('evaluate-model-other-scale', ['evaluate', '--model', 'm4.pth', '--lr', 'rg/lr', '--hr', 'rg/hr', '-o', 'ev'], 2, 'scale'),
    ('register-out-readonly', ['register', 'rg/lr', 'rg/hr', '-o', '/proc/reg'], 2, '/proc'),
]

def messages(err: str) -> list[str]:
    "The lines of `err` that are messages: not warnings, not progress-bar redraws."
    return [l for l in err.splitlines() if l.strip() and not l.startswith('pssr: warning:') and not re.search(r'\d+%\|', l)]

@pytest.mark.parametrize('argv,code,names', [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_corpus(more, capsys, argv, code, names):
    before = snapshot(more)
    got = run(*argv)
    err = capsys.readouterr().err
    lines = messages(err)
    assert got == code, f'exit {got}, stderr: {err}'
    assert len(lines) == 1 and 'error' in lines[0], err
    assert 'Traceback' not in err and 'internal error' not in err
    assert names in lines[0], f'{names!r} not named in: {lines[0]}'
    after = snapshot(more)
    assert {k: v for k, v in after.items() if k in before} == before, 'an input changed'
    assert not sorted(set(after) - set(before)), 'partial output left behind'
    assert not [p for p in more.rglob('.*tmp*')], 'temp files left behind'

# ---------------------------------------------------------------- odd but valid: restored, inputs untouched
GOOD = [
    ('predict-one-px', P + ['one.tif', '-o', 'out'], ['out/one_pssr.tif']),
    ('predict-tiny', P + ['tiny.tif', '-o', 'out'], ['out/tiny_pssr.tif']),
    ('predict-constant', P + ['const.tif', '-o', 'out'], ['out/const_pssr.tif']),
    ('predict-stack', P + ['stack.tif', '-o', 'out'], ['out/stack_pssr.tif']),
    ('predict-types', P + ['bool.tif', 'i64.tif', 'u16.tif', 'ok.png', '-o', 'out'],
     ['out/bool_pssr.tif', 'out/i64_pssr.tif', 'out/u16_pssr.tif', 'out/ok_pssr.tif']),
    ('predict-odd-names', P + ['éa b.tif', 'ünï cödé/bild 1.tif', '-o', 'ünï cödé/out put'],
     ['ünï cödé/out put/éa b_pssr.tif', 'ünï cödé/out put/bild 1_pssr.tif']),
    ('predict-symlink', P + ['link.tif', '-o', 'out'], ['out/link_pssr.tif']),
    ('predict-uint16-out', P + ['u16.tif', '-o', 'out', '--dtype', 'uint16'], ['out/u16_pssr.tif']),
    ('crappify-odd-names', ['crappify', 'ünï cödé', 'out'] + C[3:], ['out/tiles.csv', 'out/crappifier.json']),
    ('train-cuda-falls-back', TRAIN + ['--device', 'cuda:7', '--models-dir', 'mods'], ['mods/pssr.pth', 'mods/pssr.json']),
    ('train-bs-above-tiles', TRAIN[:-8] + ['--bs', '64'] + TRAIN[-6:] + ['--models-dir', 'mods'], ['mods/pssr.pth']),
]

@pytest.mark.parametrize('argv,outs', [c[1:] for c in GOOD], ids=[c[0] for c in GOOD])
def test_odd_but_valid(more, capsys, argv, outs):
    from pssr.io import read_image
    before = snapshot(more)
    got = run(*argv)
    err = capsys.readouterr().err
    assert got == 0, f'exit {got}, stderr: {err}'
    assert 'Traceback' not in err and not [l for l in messages(err) if 'error' in l], err
    for o in outs:
        assert (more/o).is_file(), f'{o} not written'
        if o.endswith('.tif'): assert np.isfinite(read_image(more/o)[0]).all(), f'{o} holds NaN/Inf'
    after = snapshot(more)
    assert {k: v for k, v in after.items() if k in before} == before, 'an input changed'
    assert not [p for p in more.rglob('.*tmp*')], 'temp files left behind'

# ---------------------------------------------------------------- ambiguous inputs: restored, or refused cleanly
EITHER = [
    ('predict-4d', P + ['d4.tif', '-o', 'out'], 'd4.tif'),
    ('predict-rgb-channel-0', P + ['rgb.tif', '-o', 'out', '--channel', '0'], 'rgb.tif'),
    ('fit-stack', ['fit-crappifier', 'stack.tif', '-o', 'c.json'], 'stack.tif'),
    ('fit-bool', ['fit-crappifier', 'bool.tif', '-o', 'c.json'], 'bool.tif'),
    ('crappify-tiny-images', ['crappify', 'ünï cödé', 'out', '--tile', '64', '--n-tiles', '1', '--crappifier', 'none', '--scale', '2'], 'bild'),
    ('predict-folder-input', P + ['lr', '-o', 'out'], 'lr'),
    ('train-hr-stacks', ['train', '--hr', 'sub/hr', '--arch', 'unet_small', '--size', '32', '--bs', '2', '--epochs', '1', '--tiles', '2', '--crappifier', 'none', '--scale', '2', '--frames', '3'], 'h0.tif'),
    ('predict-channel-on-grey', P + ['a.tif', '-o', 'out', '--channel', '1'], 'a.tif'),
    ('predict-tile-3', P + ['a.tif', '-o', 'out', '--tile', '3'], '--tile'),
    ('predict-overlap-above-tile', P + ['a.tif', '-o', 'out', '--tile', '8', '--overlap', '100'], '--overlap'),
    ('predict-max-memory-1', P + ['a.tif', '-o', 'out', '--max-memory', '1'], '--max-memory'),
    ('predict-huge-tile', P + ['a.tif', '-o', 'out', '--tile', '100000'], '--tile'),
    ('crappify-tile-4-scale-4', ['crappify', 'hr', 'out', '--tile', '4', '--n-tiles', '1', '--crappifier', 'none', '--scale', '4'], '--tile'),
    ('crappify-many-tiles', ['crappify', 'hr', 'out', '--tile', '16', '--n-tiles', '60', '--crappifier', 'none', '--scale', '2'], '--n-tiles'),
    ('train-size-8-scale-4', ['train', '--hr', 'hr', '--size', '8', '--scale', '4', '--epochs', '1', '--tiles', '2', '--bs', '2', '--crappifier', 'none', '--models-dir', 'mods'], '--size'),
    ('train-em-scale-3', ['train', '--hr', 'hr', '--size', '48', '--scale', '3', '--epochs', '1', '--tiles', '2', '--bs', '2', '--arch', 'unet_small', '--models-dir', 'mods'], 'scale'),
    ('demo-crappifier-none', D + ['--crappifier', 'none'], 'none'),
    ('export-empty-name', B + ['-o', 'm.zip', '--name', '', '--no-test'], '--name'),
    ('evaluate-same-folder', ['evaluate', '--lr', 'hr', '--hr', 'hr', '-o', 'ev', '--scale', '1'], 'hr'),
]

@pytest.mark.parametrize('argv,names', [c[1:] for c in EITHER], ids=[c[0] for c in EITHER])
def test_refused_or_done(more, capsys, argv, names):
    before = snapshot(more)
    got = run(*argv)
    err = capsys.readouterr().err
    assert got in (0, 2), f'exit {got}, stderr: {err}'
    assert 'Traceback' not in err and 'internal error' not in err
    after = snapshot(more)
    assert {k: v for k, v in after.items() if k in before} == before, 'an input changed'
    assert not [p for p in more.rglob('.*tmp*')], 'temp files left behind'
    if got == 2:
        lines = messages(err)
        assert len(lines) == 1 and names in lines[0], err
        assert not sorted(set(after) - set(before)), 'partial output left behind'

# ---------------------------------------------------------------- killed runs: the next run to the same place cleans up
@pytest.fixture
def noisy(more):
    "A real-looking noisy image that `fit-crappifier` can fit."
    from pssr.data import synthetic
    x = synthetic('fluo', n=1, size=128, seed=0)[0]
    write_tiff(more/'noisy.tif', (np.random.default_rng(0).poisson(x * 200 + 10) + 100).astype(np.float32))
    return more

KILLED = [  # (id, argv, output, what a SIGKILL during the write left beside it)
    ('crappify', C, 'out', ['.out.tmp-0badf00d/hr/h0_0.tif']),
    ('crappify-overwrite', C + ['--overwrite'], 'out', ['.out.tmp-0badf00d/tiles.csv', '.out.tmp-1badf00d/']),
    ('evaluate', E, 'ev', ['.ev.tmp-0badf00d/metrics.csv']),
    ('register', R, 'reg', ['.reg.tmp-0badf00d/lr/r.tif']),
    ('fit-crappifier', ['fit-crappifier', 'noisy.tif', '-o', 'c.json'], 'c.json', ['.c.json.ab12cd34.tmp']),
    ('train', TRAIN + ['--models-dir', 'mods', '--name', 'x'], 'mods/x.pth', ['mods/.x.pth.ab12cd34.tmp', 'mods/.x.json.zz99yy88.tmp']),
    ('predict-two', P + ['a.tif', 'lr/p1.tif', '-o', 'out'], 'out/p1_pssr.tif', ['out/.a_pssr.tif.k1ll3d00.tmp', 'out/.p1_pssr.tif.k1ll3d01.tmp']),
]

@pytest.mark.parametrize('argv,output,left', [c[1:] for c in KILLED], ids=[c[0] for c in KILLED])
def test_next_run_cleans_killed_run(noisy, argv, output, left):
    w = noisy
    for rel in left:
        p = w/rel
        if rel.endswith('/'): p.mkdir(parents=True)
        else: p.parent.mkdir(parents=True, exist_ok=True); p.write_text('left by a killed run')
    if '--overwrite' in argv: (w/output).mkdir(parents=True, exist_ok=True); (w/output/'old.txt').write_text('old set')
    before = snapshot(w)
    assert run(*argv, *(['-q'] if argv[0] == 'predict' else [])) == 0
    assert (w/output).exists()
    assert not [p for p in w.rglob('.*tmp*')], 'the killed run\'s temp files are still there'
    assert not [p for p in w.rglob('*_ckpt')], 'checkpoint folder left after the model was saved'
    after = snapshot(w)
    assert {k: v for k, v in after.items() if k in before and '.tmp' not in k and 'old.txt' not in k} == \
           {k: v for k, v in before.items() if '.tmp' not in k and 'old.txt' not in k}, 'an input changed'
    if '--overwrite' in argv: assert not (w/output/'old.txt').exists(), 'stale file kept in the replaced set'

# ---------------------------------------------------------------- re-runs: never a silent replacement, --overwrite gives a clean set
RERUN = [
    ('register', R, 'reg'),
    ('fit-crappifier', ['fit-crappifier', 'noisy.tif', '-o', 'c.json'], 'c.json'),
    ('crappify-fit', ['crappify', 'hr', 'out', '--tile', '32', '--n-tiles', '1', '--scale', '2', '--fit', 'noisy.tif'], 'out'),
]

@pytest.mark.parametrize('argv,output', [c[1:] for c in RERUN], ids=[c[0] for c in RERUN])
def test_rerun_needs_overwrite(noisy, argv, output):
    w = noisy
    assert run(*argv) == 0
    first = snapshot(w/output) if (w/output).is_dir() else {output: (w/output).read_bytes()}
    assert run(*argv) == 2, 'an existing output was replaced without --overwrite'
    assert (snapshot(w/output) if (w/output).is_dir() else {output: (w/output).read_bytes()}) == first
    assert run(*argv, '--overwrite') == 0
    if (w/output).is_dir(): assert sorted(snapshot(w/output)) == sorted(first), 'the replaced set differs in its files'
    assert not [p for p in w.rglob('.*tmp*')]
