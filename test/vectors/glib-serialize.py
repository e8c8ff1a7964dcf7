#!/usr/bin/python3
# Oracle for the GVariant codec: reads JSON lines {"type": T, "value": V} on stdin and prints the
# hex of GLib's own normal-form serialisation of each (Debian python3-gi).
import json, sys
import gi
gi.require_version('GLib', '2.0')
from gi.repository import GLib

def conv(t, v):
    if t == 'v':
        return GLib.Variant(v['type'], conv(v['type'], v['value']))
    if t.startswith('m'):
        return None if v is None else conv(t[1:], v)
    if t == 'ay':
        return bytes(v)
    if t.startswith('a{'):
        kt, vt = split(t[2:-1])
        return {conv(kt, k): conv(vt, x) for k, x in v}
    if t.startswith('a'):
        return [conv(t[1:], x) for x in v]
    if t.startswith('('):
        return tuple(conv(m, x) for m, x in zip(split(t[1:-1]), v))
    if t in 'tx':
        return int(v)
    return v

def one(t, i):
    c = t[i]
    if c in 'am':
        return one(t, i + 1)
    if c in '({':
        depth = 0
        for j in range(i, len(t)):
            if t[j] in '({': depth += 1
            elif t[j] in ')}': depth -= 1
            if depth == 0: return j + 1
    return i + 1

def split(s):
    out, i = [], 0
    while i < len(s):
        j = one(s, i)
        out.append(s[i:j]); i = j
    return out

for line in sys.stdin:
    case = json.loads(line)
    var = GLib.Variant(case['type'], conv(case['type'], case['value']))
    print(var.get_data_as_bytes().get_data().hex())
