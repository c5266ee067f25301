"The notebook check (`.ci/check_notebooks.py`) on temporary fake notebooks."
import importlib.util, json
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('check_notebooks', ROOT / '.ci' / 'check_notebooks.py')
cn = importlib.util.module_from_spec(spec); spec.loader.exec_module(cn)

def write_nb(path: Path, outputs: bool, pad: int = 0) -> Path:
    "A minimal nbformat-4 notebook with one markdown and one code cell (with or without an output)."
    out = [{'output_type': 'stream', 'name': 'stdout', 'text': ['hello\n']}] if outputs else []
    cells = [{'cell_type': 'markdown', 'metadata': {}, 'source': ['# Title\n', 'x' * pad]},
             {'cell_type': 'code', 'metadata': {}, 'execution_count': 1 if outputs else None,
              'source': ["print('hello')"], 'outputs': out}]
    path.write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    return path

def test_passes_with_outputs(tmp_path, capsys):
    write_nb(tmp_path / 'a.ipynb', True); write_nb(tmp_path / 'b.ipynb', True)
    assert cn.main([str(tmp_path)]) == 0
    assert 'notebooks carry outputs' in capsys.readouterr().out

def test_missing_outputs_one_line_each(tmp_path, capsys):
    write_nb(tmp_path / 'a.ipynb', True); write_nb(tmp_path / 'b.ipynb', False); write_nb(tmp_path / 'c.ipynb', False)
    assert cn.main([str(tmp_path)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(tmp_path / 'b.ipynb')) and 'no code cell has an output' in lines[1]

def test_allow_list(tmp_path):
    write_nb(tmp_path / 'a.ipynb', False); write_nb(tmp_path / 'b.ipynb', False)
    assert cn.main([str(tmp_path), '--allow', 'a.ipynb']) == 1
    assert cn.main([str(tmp_path), '--allow', 'a.ipynb', 'b.ipynb']) == 0
    allow = tmp_path / 'allow.txt'; allow.write_text('# comment\na.ipynb  # pending\n\nb.ipynb\n')
    assert cn.read_allow_file(allow) == ['a.ipynb', 'b.ipynb']
    assert cn.main([str(tmp_path), '--allow-file', str(allow)]) == 0

def test_size_limits(tmp_path, capsys):
    big = write_nb(tmp_path / 'big.ipynb', True, pad=300_000)
    write_nb(tmp_path / 'small.ipynb', True)
    assert cn.main([str(tmp_path), '--max-mb', '0.25']) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [l for l in out if l.startswith(str(big))] and 'over the 0.25 MB limit' in out[0]
    # allowed notebooks are still size-checked; the folder total has its own limit
    assert cn.main([str(tmp_path), '--allow', 'big.ipynb', '--max-mb', '0.25']) == 1
    assert cn.main([str(tmp_path), '--max-total-mb', '0.2']) == 1
    assert 'notebooks total' in capsys.readouterr().out.strip().splitlines()[-1]
    assert cn.main([str(tmp_path)]) == 0

def test_unreadable_and_checkpoints(tmp_path):
    (tmp_path / 'bad.ipynb').write_text('{not json')
    assert any('not a readable notebook' in l for l in cn.check_folder(tmp_path))
    (tmp_path / 'bad.ipynb').unlink()
    write_nb(tmp_path / 'ok.ipynb', True)
    (tmp_path / '.ipynb_checkpoints').mkdir(); write_nb(tmp_path / '.ipynb_checkpoints' / 'ok-checkpoint.ipynb', False)
    assert cn.check_folder(tmp_path) == []
    assert cn.main([str(tmp_path / 'missing')]) == 2
