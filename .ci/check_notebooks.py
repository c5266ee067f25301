#!/usr/bin/env python3
"""Check that the committed notebooks are readable on a repository page: every notebook carries code output,
none exceeds the size limit, and the folder stays under its total limit.

One line per offending notebook, exit 1 if any; exit 0 otherwise. Notebooks named in `--allow` (or listed one per
line in an `--allow-file`) may lack outputs for now; sizes are always checked. Remove the allow-list to be strict.

    python .ci/check_notebooks.py nbs                      # strict
    python .ci/check_notebooks.py nbs --allow 00_io.ipynb  # 00_io may lack outputs
"""
import argparse, json, sys
from pathlib import Path

MB = 1024 * 1024
MAX_NOTEBOOK = 2 * MB   # bytes, per notebook
MAX_TOTAL = 15 * MB     # bytes, all notebooks in the folder together

def has_output(nb: dict) -> bool:
    "True if any code cell of the notebook dict `nb` has an output."
    return any(c.get('cell_type') == 'code' and c.get('outputs') for c in nb.get('cells', []))

def notebook_problems(path: Path, allow_no_output: bool = False, max_bytes: int = MAX_NOTEBOOK) -> list[str]:
    "The problems of one notebook, one line each (empty if it passes)."
    out, size = [], path.stat().st_size
    if size > max_bytes: out.append(f'{path}: {size / MB:.2f} MB, over the {max_bytes / MB:g} MB limit (lower figure DPI or size)')
    try: nb = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as e: return out + [f'{path}: not a readable notebook ({e})']
    if not allow_no_output and not has_output(nb):
        out.append(f'{path}: no code cell has an output (execute it in full mode and commit it with its outputs)')
    return out

def check_folder(folder: Path, allow=(), max_bytes: int = MAX_NOTEBOOK, max_total: int = MAX_TOTAL) -> list[str]:
    "Problems of every `*.ipynb` in `folder` (recursively, skipping checkpoints), plus the folder's total size."
    paths = sorted(p for p in Path(folder).rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    allow = {Path(a).name for a in allow}
    out = [line for p in paths for line in notebook_problems(p, p.name in allow, max_bytes)]
    total = sum(p.stat().st_size for p in paths)
    if total > max_total: out.append(f'{folder}: notebooks total {total / MB:.2f} MB, over the {max_total / MB:g} MB limit')
    return out

def read_allow_file(path) -> list[str]:
    "Notebook names, one a line; blank lines and `#` comments ignored."
    lines = Path(path).read_text(encoding='utf-8').splitlines()
    return [l.split('#')[0].strip() for l in lines if l.split('#')[0].strip()]

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('folder', nargs='?', default='nbs', help='notebook folder (default: %(default)s)')
    p.add_argument('--allow', nargs='*', default=[], help='notebook names that may lack outputs for now')
    p.add_argument('--allow-file', help='file listing such notebook names, one a line')
    p.add_argument('--max-mb', type=float, default=MAX_NOTEBOOK / MB, help='per-notebook limit (default: %(default)g)')
    p.add_argument('--max-total-mb', type=float, default=MAX_TOTAL / MB, help='folder limit (default: %(default)g)')
    a = p.parse_args(argv)
    if not Path(a.folder).is_dir():
        print(f'{a.folder}: not a folder', file=sys.stderr); return 2
    allow = list(a.allow) + (read_allow_file(a.allow_file) if a.allow_file else [])
    problems = check_folder(Path(a.folder), allow, int(a.max_mb * MB), int(a.max_total_mb * MB))
    for line in problems: print(line)
    if not problems:
        pending = f' ({len(allow)} allowed to lack outputs for now)' if allow else ''
        print(f'{a.folder}: notebooks carry outputs and are within the size limits{pending}')
    return 1 if problems else 0

if __name__ == '__main__': sys.exit(main())
