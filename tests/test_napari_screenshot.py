"`make napari-screenshot` (`scripts/napari_screenshot.py`): refuses before any training when it cannot succeed."
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('napari_screenshot', ROOT / 'scripts' / 'napari_screenshot.py')
ns = importlib.util.module_from_spec(spec); spec.loader.exec_module(ns)

def test_default_output_is_the_readme_image():
    assert ns.OUT == ROOT / 'nbs' / 'images' / 'napari_plugin.png'
    assert 'nbs/images/napari_plugin.png' in (ROOT / 'README.md').read_text()

def test_refuses_without_display(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv('DISPLAY', raising=False); monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    out = tmp_path / 'shot.png'
    assert ns.main(['-o', str(out)]) == 2
    assert 'xvfb-run' in capsys.readouterr().err and not out.exists()

def test_keeps_existing_output_and_checks_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('DISPLAY', ':0')
    out = tmp_path / 'shot.png'; out.write_bytes(b'keep')
    assert ns.main(['-o', str(out)]) == 2
    assert '--overwrite' in capsys.readouterr().err and out.read_bytes() == b'keep'
    assert ns.main(['-o', str(tmp_path / 'new.png'), '--model', str(tmp_path / 'missing.pth')]) == 2
    assert 'does not exist' in capsys.readouterr().err and not (tmp_path / 'new.png').exists()
