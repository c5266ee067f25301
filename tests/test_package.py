"Package hygiene: the licence, the citation and the conda environment say what pyproject.toml says."
import re, tomllib
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / 'pyproject.toml').read_text())

def test_license_is_apache_as_declared():
    assert PYPROJECT['project']['license'] == 'Apache-2.0'
    text = (ROOT / 'LICENSE').read_text()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text
    assert 'END OF TERMS AND CONDITIONS' in text  # the full text, not a stub

def test_citation_cff_cites_software_and_paper():
    cff = yaml.safe_load((ROOT / 'CITATION.cff').read_text())
    assert cff['cff-version'] == '1.2.0' and cff['type'] == 'software'
    assert cff['version'] == PYPROJECT['project']['version'] and cff['license'] == 'Apache-2.0'
    paper = cff['preferred-citation']
    assert paper['doi'] == '10.1038/s41592-021-01080-z' and paper['year'] == 2021
    assert paper['authors'][0]['family-names'] == 'Fang' and paper['authors'][-1]['family-names'] == 'Manor'

def test_environment_yml_uses_conda_forge_only():
    env = yaml.safe_load((ROOT / 'environment.yml').read_text())
    assert env['channels'][0] == 'conda-forge' and 'pytorch' not in env['channels'] and 'nvidia' not in env['channels']
    deps = [d for d in env['dependencies'] if isinstance(d, str)]
    assert not any(d.startswith('pytorch-cuda') for d in deps)
    torch_min = re.search(r'torch>=([\d.]+)', ' '.join(PYPROJECT['project']['dependencies'])).group(1)
    assert f'pytorch>={torch_min}' in deps  # the same range as pyproject.toml
    pins = dict(re.findall(r'(torch|torchvision)==([\d.]+)', (ROOT / 'Makefile').read_text()))
    assert pins['torch'] in (ROOT / 'environment.yml').read_text()  # the tested combination is named
