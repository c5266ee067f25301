"""The CLI answers without importing torch when it needs no model: `pssr --help`, `pssr <command> --help` for every
subcommand, a mistyped subcommand, and option or input errors found before a model is loaded. Checked through
`sys.modules` in a fresh interpreter, never by wall-clock time."""
import subprocess, sys
import pytest
from pssr.cli import SUBCOMMANDS

def imports_torch(argv, cwd) -> tuple[bool, int, str]:
    "Run `pssr.cli.main(argv)` in a fresh interpreter: (was torch or fastai imported, exit code, stderr)."
    code = ('import sys\nfrom pssr.cli import main\ntry: rc = main(%r)\nexcept SystemExit as e: rc = e.code\n'
            "print('torch' in sys.modules or 'fastai' in sys.modules, rc)" % (argv,))
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=cwd, timeout=300)
    torch, rc = r.stdout.strip().splitlines()[-1].split()
    return torch == 'True', int(rc), r.stderr

@pytest.mark.parametrize('argv, rc', [
    (['--help'], 0), ([], 2), (['no-such-command'], 2),
    *[([cmd, '--help'], 0) for cmd in SUBCOMMANDS],
    (['crappify', 'missing_hr', 'out'], 2), (['fit-crappifier', 'missing.tif', '-o', 'c.json'], 2),
    (['evaluate', '--hr-dir', 'missing_hr', '--crappifier', 'em', '-o', 'out'], 2),
    (['train', '--hr', 'missing_hr'], 2), (['train', '--hr', 'h', '--wd', 'nan'], 2), (['train', '--hr', 'h', '--arch', 'vgg'], 2),
    (['train', '--hr', 'h', '--size', '30'], 2), (['train'], 2),
    (['predict', 'missing.pth', 'a.tif', '-o', 'out'], 2), (['predict', 'm.pth', 'a.tif', '-o', 'out', '--bs', '0'], 2),
    (['demo', '--arch', 'vgg'], 2), (['register', 'missing_lr', 'missing_hr'], 2), (['export-bmz', 'm.pth'], 2),
    (['demo', '--data', 'missing_dir'], 2), (['register', 'missing_lr', 'missing_hr', '-o', 'out'], 2),
    (['evaluate', '--hr-dir', 'missing_hr', '--lr-dir', 'missing_lr', '-o', 'out'], 2)])
def test_no_torch(tmp_path, argv, rc):
    torch, code, err = imports_torch(argv, tmp_path)
    assert (torch, code) == (False, rc), (argv, torch, code, err)
    assert 'Warning' not in err, err  # no library warnings
    if rc == 2 and argv and argv != ['no-such-command']: assert len(err.strip().splitlines()) == 1, err  # one line, no traceback

def test_predict_runs_torch_when_it_needs_the_model(tmp_path):
    "A subcommand that needs its model imports torch only when it runs (here: on a model file that is not one)."
    (tmp_path / 'm.pth').write_bytes(b'not a model'); (tmp_path / 'a.tif').write_bytes(b'x')
    torch, code, err = imports_torch(['predict', 'm.pth', 'a.tif', '-o', 'out'], tmp_path)
    assert (torch, code) == (True, 2), err
    assert 'Warning' not in err and len(err.strip().splitlines()) == 1, err


def test_python_m_pssr_cli_runs_the_cli():
    "`python -m pssr.cli` (used by `accelerate launch -m pssr.cli train`) is the same command line as `pssr`."
    r = subprocess.run([sys.executable, '-m', 'pssr.cli', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'usage: pssr' in r.stdout, (r.returncode, r.stdout[:200], r.stderr[:200])
    r = subprocess.run([sys.executable, '-m', 'pssr.cli', 'predict', 'missing.pth', 'missing.tif', '-o', 'out'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'missing' in r.stderr and 'Traceback' not in r.stderr, (r.returncode, r.stderr[:300])
