#!/usr/bin/env python3
"""Every GOOP_E* code in include/goop/common.h has a message and a line in
man/goop-errors.3.scd."""
import os, re, sys

root = sys.argv[1]
hdr = open(os.path.join(root, 'include', 'goop', 'common.h')).read()
codes = re.findall(r'XX\((E[A-Z0-9_]+),\s*[^,]+,\s*"([^"]*)"\)', hdr)
man = open(os.path.join(root, 'man', 'goop-errors.3.scd')).read()
bad = 0
for name, msg in codes:
    if not msg.strip():
        print('not ok - GOOP_%s has no message' % name); bad += 1
    if ('GOOP_' + name) not in man:
        print('not ok - GOOP_%s missing from goop-errors(3)' % name); bad += 1
print(f'{len(codes)} error codes checked, {bad} problems')
sys.exit(1 if bad else 0)
