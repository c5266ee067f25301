"""The CLI answers without importing torch when it needs no model: `pssr --help`, a mistyped subcommand, and the
subcommands whose modules are light (crappify, evaluate). Checked through `sys.modules` in a fresh interpreter,
never by wall-clock time."""
import subprocess, sys
import pytest

def imports_torch(argv, cwd) -> tuple[bool, int]:
    "Run `pssr.cli.main(argv)` in a fresh interpreter: (was torch imported, exit code)."
    code = ('import sys\nfrom pssr.cli import main\ntry: rc = main(%r)\nexcept SystemExit as e: rc = e.code\n'
            "print('torch' in sys.modules, rc)" % (argv,))
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=cwd, timeout=300)
    torch, rc = r.stdout.strip().splitlines()[-1].split()
    return torch == 'True', int(rc)

@pytest.mark.parametrize('argv, rc', [
    (['--help'], 0), ([], 2), (['no-such-command'], 2), (['crappify', '--help'], 0), (['evaluate', '--help'], 0),
    (['crappify', 'missing_hr', 'out'], 2), (['fit-crappifier', 'missing.tif', '-o', 'c.json'], 2),
    (['evaluate', '--hr', 'missing_hr', '--crappifier', 'em', '-o', 'out'], 2)])
def test_no_torch(tmp_path, argv, rc):
    test_rc = imports_torch(argv, tmp_path)
    assert test_rc == (False, rc), (argv, test_rc)

def test_predict_imports_torch(tmp_path):
    "A subcommand that needs a model still builds its full parser (its module and torch are imported)."
    assert imports_torch(['predict', '--help'], tmp_path) == (True, 0)
