#!/usr/bin/env python3
"""summarysim.py - every interleaving of the summary tree's word steps.

    python3 tools/summarysim.py [--no-heal] [--no-recheck]

src/mem/summary.c keeps, above each leaf of signal bits, a root bit and a
top bit. This program runs small sets of threads (signal, take, yield
set/clear, and the finders' clears of stale bits) over two leaves under
one root word under one top word, one atomic word operation per step,
and explores every interleaving (sequentially consistent; the C code's
acq_rel RMWs give the same outcomes for these message-passing shapes).
At the end of each interleaving it checks:

  * lost: a non-zero word under a clear bit (a wake-up nobody finds);
  * stale: a set bit over an empty word; allowed, but finders must clear
    it: after a sequential sweep of finds and takes (what idle workers
    do while weft__summary_any is true) the tree must be exact.

--no-heal models summary.c before finders cleared stale bits: stale end
states that the sweep cannot clear. --no-recheck drops clear_up's re-read
of the word below: lost bits (the model can see the bug it guards).
Exit status 1 when any case fails.
"""
import sys

Y = 1 << 63  # the yield bit of a leaf
SIG = Y - 1  # its signal bits
HEAL = '--no-heal' not in sys.argv
RECHECK = '--no-recheck' not in sys.argv

# A program is a list of instructions over the words leaf0, leaf1, root,
# top and the thread's registers: ('or'|'and', word, operand, reg) is one
# RMW that keeps the old value in reg; ('ld', word, reg) one load;
# ('jif', pred, label) and ('jmp', label) are local, not steps.


def clear_up(w, bit, below, p, emptied, refilled):
    """summary.c clear_up(w, bit, below), then to emptied/refilled/'END'."""
    code = [('and', w, ~bit, p + 'old')]
    if RECHECK:
        code += [('ld', below, p + 'b'),
                 ('jif', lambda r: r[p + 'b'] == 0, p + 'Z'),
                 ('or', w, bit, p + 'o'),
                 ('jif', lambda r: r[p + 'o'] == 0, refilled),
                 ('jmp', 'END'),
                 ('lbl', p + 'Z')]
    return code + [('jif', lambda r: (r[p + 'old'] & ~bit) == 0, emptied),
                   ('jmp', 'END')]


def leaf_emptied(l):
    return (clear_up('root', 1 << l, 'leaf%d' % l, 'r', 'EMP', 'REF') +
            [('lbl', 'EMP')] +
            clear_up('top', 1, 'root', 't', 'END', 'END') +
            [('jmp', 'END'), ('lbl', 'REF'), ('or', 'top', 1, 'x'),
             ('lbl', 'END')])


def climb(l):  # leaf_filled
    return [('or', 'root', 1 << l, 'o2'),
            ('jif', lambda r: r['o2'] != 0, 'END'),
            ('or', 'top', 1, 'x'), ('lbl', 'END')]


def signal(l, bit):
    return [('or', 'leaf%d' % l, bit, 'o'),
            ('jif', lambda r: r['o'] != 0, 'END')] + climb(l)


def yield_set(l):
    return [('or', 'leaf%d' % l, Y, 'o'),
            ('jif', lambda r: r['o'] != 0, 'END')] + climb(l)


def yield_clear(l):
    return [('and', 'leaf%d' % l, ~Y, 'o'),
            ('jif', lambda r: r['o'] != Y, 'END')] + leaf_emptied(l)


def take(l):
    """weft__summary_take: empties the leaf; clears a stale root bit."""
    code = [('and', 'leaf%d' % l, Y, 'o'),
            ('jif', lambda r: r['o'] & SIG and not r['o'] & Y, 'EMPTY')]
    if HEAL:
        code += [('jif', lambda r: r['o'] != 0, 'END'),
                 ('ld', 'root', 'rb'),
                 ('jif', lambda r: (r['rb'] >> l) & 1, 'EMPTY')]
    return code + [('jmp', 'END'), ('lbl', 'EMPTY')] + leaf_emptied(l)


def find_top():
    """weft__summary_find on a top bit over an empty root word."""
    if not HEAL:
        return []
    return [('ld', 'top', 'tw'), ('jif', lambda r: r['tw'] == 0, 'END'),
            ('ld', 'root', 'rw'), ('jif', lambda r: r['rw'] != 0, 'END')] + \
        clear_up('top', 1, 'root', 'h', 'END', 'END') + [('lbl', 'END')]


def seq(*progs):
    """Programs one after the other in one thread (labels kept apart)."""
    out = []
    for k, p in enumerate(progs):
        for ins in p:
            if ins[0] in ('lbl', 'jmp'):
                ins = (ins[0], '%d:%s' % (k, ins[1]))
            elif ins[0] == 'jif':
                ins = ('jif', ins[1], '%d:%s' % (k, ins[2]))
            out.append(ins)
    return out


def assemble(p):
    p = seq(p)
    where, code = {}, []
    for ins in p:
        if ins[0] == 'lbl':
            where[ins[1]] = len(code)
        else:
            code.append(ins)
    return [('jif', i[1], where[i[2]]) if i[0] == 'jif' else
            ('jmp', where[i[1]]) if i[0] == 'jmp' else i for i in code]


def settle(code, pc, regs):
    """Follow local jumps up to the next step (or the end)."""
    while pc < len(code) and code[pc][0] in ('jif', 'jmp'):
        ins = code[pc]
        if ins[0] == 'jmp':
            pc = ins[1]
        else:
            pc = ins[2] if ins[1](regs) else pc + 1
    return pc


def step(code, pc, regs, mem):
    op, w = code[pc][0], code[pc][1]
    if op == 'ld':
        regs[code[pc][2]] = mem[w]
    else:
        regs[code[pc][3]] = mem[w]
        mem[w] = mem[w] | code[pc][2] if op == 'or' else mem[w] & code[pc][2]
    return settle(code, pc + 1, regs)


def run_alone(prog, mem):
    code = assemble(prog)
    regs = {}
    pc = settle(code, 0, regs)
    while pc < len(code):
        pc = step(code, pc, regs, mem)


def problems(m):
    out = []
    for l in (0, 1):
        bit = (m['root'] >> l) & 1
        if m['leaf%d' % l] and not bit:
            out.append('lost leaf%d' % l)
        if bit and not m['leaf%d' % l]:
            out.append('stale root bit %d' % l)
    if m['root'] and not m['top']:
        out.append('lost root')
    if m['top'] and not m['root']:
        out.append('stale top')
    return out


def explore(threads, init):
    """Counts of lost end states, and of end states a sweep leaves stale."""
    codes = [assemble(t) for t in threads]
    bad, seen, ends = {}, set(), 0
    todo = [(tuple((settle(c, 0, {}), ()) for c in codes),
             tuple(sorted(init.items())))]
    while todo:
        st = todo.pop()
        if st in seen:
            continue
        seen.add(st)
        thr, mem = st
        live = [i for i, (pc, _) in enumerate(thr) if pc < len(codes[i])]
        if not live:
            ends += 1
            m = dict(mem)
            found = [p for p in problems(m) if p.startswith('lost')]
            for _ in range(3):  # idle finders: look again while top shows
                run_alone(seq(find_top(), take(0), take(1), find_top()), m)
            found += ['left ' + p for p in problems(m)
                      if not p.startswith('lost')]
            for p in found:
                bad[p] = bad.get(p, 0) + 1
            continue
        for i in live:
            pc, regs = thr[i]
            m, r = dict(mem), dict(regs)
            t = list(thr)
            t[i] = (step(codes[i], pc, r, m), tuple(sorted(r.items())))
            todo.append((tuple(t), tuple(sorted(m.items()))))
    return ends, bad


EMPTY = {'leaf0': 0, 'leaf1': 0, 'root': 0, 'top': 0}
ONE = dict(EMPTY, leaf0=1, root=1, top=1)
CASES = [
    # the late climb and the late restore (summary.c, "Stale upper bits")
    ('take | signal', [take(0), signal(0, 2)], EMPTY),
    ('take | take | signal', [take(0), take(0), signal(0, 2)], ONE),
    ('take | take | signal | signal other leaf',
     [take(0), take(0), signal(0, 2), signal(1, 2)], ONE),
    ('take; signal | take | signal',
     [seq(take(0), signal(0, 4)), take(0), signal(0, 2)], ONE),
    ('take; take other leaf | take | signal | signal other leaf',
     [seq(take(0), take(1)), take(0), signal(0, 2), signal(1, 2)], ONE),
    # clears of stale bits racing signals and takes
    ('stale root: take | signal | take',
     [take(0), signal(0, 2), take(0)], dict(EMPTY, root=1, top=1)),
    ('stale root: take | signal other leaf; take it',
     [take(0), seq(signal(1, 2), take(1))], dict(EMPTY, root=1, top=1)),
    ('stale top: find | signal | take',
     [find_top(), signal(0, 2), take(0)], dict(EMPTY, top=1)),
    ('stale top: find | find | signal',
     [find_top(), find_top(), signal(0, 2)], dict(EMPTY, top=1)),
    # yield bits
    ('take | yield set | signal', [take(0), yield_set(0), signal(0, 2)], ONE),
    ('yield clear | take | signal',
     [yield_clear(0), take(0), signal(0, 2)], dict(ONE, leaf0=1 | Y)),
]

if __name__ == '__main__':
    failed = 0
    for name, threads, init in CASES:
        ends, bad = explore(threads, init)
        failed += bool(bad)
        print('%-58s %5d ends  %s' % (name, ends, bad or 'ok'))
    sys.exit(1 if failed else 0)
