"`make data` (`scripts/make_data.py`): synthetic samples always, the Dataverse sample when reachable, exit 0 offline."
import importlib.util
from pathlib import Path
from pssr.io import PssrInputError, read_image

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('make_data', ROOT / 'scripts' / 'make_data.py')
md = importlib.util.module_from_spec(spec); spec.loader.exec_module(md)

def test_offline_writes_synthetic_and_exits_0(tmp_path, monkeypatch, capsys):
    def unreachable(*a, **k): raise PssrInputError('https://dataverse.tdl.org', 'cannot reach the Dataverse server', 'check your network')
    monkeypatch.setattr(md, 'dataverse_files', unreachable)
    assert md.main(['--out', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'PSSR data not downloaded' in out and 'cannot reach' in out
    em = sorted((tmp_path / 'synthetic' / 'em').glob('*.tif'))
    assert len(em) == 4
    img, meta = read_image(em[0])
    assert img.shape == (512, 512) and abs(meta.pixel_size - 0.002) < 1e-9
    tl, _ = read_image(sorted((tmp_path / 'synthetic' / 'fluo_timelapse').glob('*.tif'))[0])
    assert tl.shape == (16, 256, 256)
    # a second run keeps what is there
    before = em[0].stat().st_mtime_ns
    assert md.main(['--out', str(tmp_path), '--offline']) == 0
    assert em[0].stat().st_mtime_ns == before and 'already there, kept' in capsys.readouterr().out

def test_choose_smallest_within_budget():
    files = [dict(folder='EM', name=f'{n}.tif', size=s, md5=None, url='') for n, s in (('a', 300e6), ('b', 100e6), ('c', 150e6))]
    files.append(dict(folder='fluo', name='d.tif', size=1e6, md5=None, url=''))
    assert [f['name'] for f in md.choose(files, 'EM/*', 300)] == ['b.tif', 'c.tif']
    assert [f['name'] for f in md.choose(files, '*', 0)] == ['d.tif', 'b.tif', 'c.tif', 'a.tif']

def test_download_sample(tmp_path, monkeypatch):
    files = [dict(folder='EM', name='x.tif', size=10, md5='m', url='u1'), dict(folder='', name='y.tif', size=5, md5=None, url='u2')]
    got = []
    monkeypatch.setattr(md, 'dataverse_files', lambda *a, **k: files)
    monkeypatch.setattr(md, 'download', lambda url, dest, md5=None: got.append((url, Path(dest), md5)) or Path(dest))
    paths = md.fetch_sample(tmp_path, '*', 500)
    assert got == [('u2', tmp_path / 'y.tif', None), ('u1', tmp_path / 'EM' / 'x.tif', 'm')] and len(paths) == 2
