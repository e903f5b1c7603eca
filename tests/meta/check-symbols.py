#!/usr/bin/env python3
"""The exported symbols of libgoop.so, the version script and the GOOP_API
declarations in include/goop/*.h must name the same functions, and every
public identifier must start with goop_/GOOP_."""
import glob, os, re, subprocess, sys

root, so = sys.argv[1], sys.argv[2]
decl = set()
bad = []
for h in glob.glob(os.path.join(root, 'include', 'goop', '*.h')):
    text = open(h).read()
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    text = '\n'.join(l for l in text.splitlines() if not l.lstrip().startswith('#'))
    for m in re.finditer(r'GOOP_API\s+[^;{]*?\b(\w+)\s*\(', text):
        decl.add(m.group(1))
for name in decl:
    if not name.startswith('goop_'):
        bad.append('public function without goop_ prefix: ' + name)

sym = open(os.path.join(root, 'libgoop', 'libgoop.sym')).read()
sym = re.sub(r'/\*.*?\*/', '', sym, flags=re.S)
listed = set(re.findall(r'^\s*(goop_\w+);', sym, flags=re.M))

out = subprocess.run(['nm', '-D', '--defined-only', so], capture_output=True, text=True, check=True).stdout
exported = set()
for line in out.splitlines():
    parts = line.split()
    if len(parts) >= 3 and parts[1] in ('T', 'W', 'D', 'B', 'R'):
        exported.add(parts[2].split('@')[0])
exported.discard('')
exported = {s for s in exported if not s.startswith('LIBGOOP_')}

def diff(a, an, b, bn):
    for s in sorted(a - b):
        bad.append(f'{s}: in {an} but not in {bn}')

diff(decl, 'headers', listed, 'libgoop.sym')
diff(listed, 'libgoop.sym', decl, 'headers')
diff(decl, 'headers', exported, 'libgoop.so exports')
diff(exported, 'libgoop.so exports', decl, 'headers')
for b in bad:
    print('not ok -', b)
print(f'{len(decl)} public functions checked, {len(bad)} problems')
sys.exit(1 if bad else 0)
