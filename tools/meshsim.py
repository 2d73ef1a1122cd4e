#!/usr/bin/env python3
"""meshsim.py - steal mode against mesh mode on a simulated many-core CPU.

    python3 tools/meshsim.py [--workers 64] [--groups 8] [--seed 1]

No many-core machine was available for issue 7, so this discrete-event
simulation stands in for one (docs/mesh.md, "Where mesh should win"). It
models what the two balance modes of src/sched/ (steal.c, mesh.c) do with shared
cache lines, and charges every access by where the line was last written:

  * a line is owned by its last writer and shared by its readers since;
    an access that hits costs HIT; one that must fetch the line costs
    L_IN inside the accessor's L3 group and L_OUT across groups (a write
    to a line others share pays the farthest copy);
  * a write holds the line for its transfer time, so writers of one hot
    line queue behind each other (a thieves' CAS on a victim's `top`, the
    injection queue's lock);
  * a task that runs on another worker than the one that spawned it pays
    TASK_LINES transfers for its TCB and arguments.

Steal mode (as worker.c): own deque newest first, then the injection queue
(batches of 32), then one steal per victim in a random rotation; after
SPIN_ROUNDS fruitless rotations a worker sleeps, and a worker that queues
work wakes one sleeper when nobody is searching (WAKE_NS later it runs).
Mesh mode: own deque, then the inbox (every chunk sent to it), then the
injection queue; an idle worker sets its bit in the hunger word and waits
on its inbox line, stealing only as the last resort after MESH_SPIN_NS.
An idle worker's hunger bit is in its L3 group's word (one line per group).
A worker that queues work claims the hungry workers of the nearest group's
word at once and shares its backlog among them, 1, 2, 4 ... 31 tasks each
while feeds keep coming; above the
threshold (64) and with the injection queue empty it sends a chunk to a
neighbour of low published load (group first, at most 8 looked at). The
deques hold 256 tasks; a full one spills its older half to the injection
queue.

Workloads (task run times in ns, all simulated):
  fanout    one task spawns 100,000 tasks of 2 us each (a server's accept
            loop, a flat spawn loop)
  fanout8   the same 100,000 tasks from one spawner per L3 group
  tree      a binary spawn tree 16 levels deep (65,535 tasks), 1 us each
            (fork-join without joins: divide and conquer that spreads out)
  local     every worker spawns its own 2,000 tasks of 2 us (no movement
            needed)

It is a model, not a measurement: costs are typical figures for a 64-core
part with 8-core L3 groups (40 ns inside a group, 130 ns across), queues
are exact, and nothing else runs. What it can show is how the two modes'
cache-line traffic scales with the number of workers and groups.
"""
import argparse
import heapq
import random
from collections import deque

HIT = 1
L_IN, L_OUT = 40, 130
TASK_LINES = 2
PUSH_NS, SPAWN_NS = 5, 15
WAKE_NS = 5000
SPIN_ROUNDS = 2
MESH_SPIN_NS = 20000
CHUNK, DEQUE_CAP, INJECT_BATCH, RING = 31, 256, 32, 8
THRESHOLD, PROBES = 64, 8
TICK = 61
GROUP_WORDS = True   # one hunger word per L3 group (variant oneword: one
                     # word for all, as weft had before)
CLAIM_ALL = True     # claim a word's hungry workers at once (variant
                     # oneclaim: one neighbour per feed, as weft had before)
CLAIM_CAP = 0        # variant claim8: at most 8 of them


class Line:
    __slots__ = ("owner", "sharers", "free_at")

    def __init__(self, owner=None):
        self.owner = owner
        self.sharers = {owner} if owner is not None else set()
        self.free_at = 0


class Sim:
    def __init__(self, mode, n, groups, seed):
        self.mode, self.n = mode, n
        self.group = [w * groups // n for w in range(n)]
        self.rng = random.Random(seed)
        self.dq = [deque() for _ in range(n)]
        self.top = [Line(w) for w in range(n)]
        self.bottom = [Line(w) for w in range(n)]
        self.load_line = [Line(w) for w in range(n)]
        self.load_pub = [0] * n
        self.inject = deque()
        self.inject_line = Line()
        self.idle_line = Line()  # rt->idle / rt->searching
        self.sleeping = set()
        self.searching = set()
        self.cur = [None] * n  # [task, next child] of the running task
        self.rounds = [0] * n
        self.hungry = set()
        self.hungry_line = Line()
        self.hungry_lines = [Line() for _ in range(groups)]
        self.inbox = [deque() for _ in range(n)]  # (src, [tasks])
        self.inbox_line = [Line(w) for w in range(n)]
        self.chunk_line = {}
        self.in_ring = {(a, b): 0 for a in range(n) for b in range(n)}
        self.gate = [0] * n
        self.feed = [1] * n
        self.fed = [0] * n
        self.ticks = [TICK] * n
        self.order = []
        for w in range(n):
            same = [v for v in range(n) if v != w and self.group[v] == self.group[w]]
            other = [v for v in range(n) if v != w and self.group[v] != self.group[w]]
            other.sort(key=lambda v: ((self.group[v] - self.group[w]) % groups, v))
            self.order.append((same, other))
        self.tasks = []  # (creator, run_ns, children)
        self.done = 0
        self.events = []
        self.t_end = 0
        self.xfer = [0, 0]  # transfers inside / across groups
        self.moved = 0
        self.idle_since = [None] * n

    # ---- cache lines ----------------------------------------------------
    def dist(self, a, b):
        if a is None or a == b:
            return HIT
        same = self.group[a] == self.group[b]
        self.xfer[0 if same else 1] += 1
        return L_IN if same else L_OUT

    def read(self, line, w, t):
        t = max(t, line.free_at)
        if w in line.sharers:
            return t + HIT
        cost = self.dist(line.owner, w)
        line.sharers.add(w)
        return t + cost

    def write(self, line, w, t):
        t = max(t, line.free_at)
        if line.owner == w and line.sharers <= {w}:
            return t + HIT
        far = [s for s in line.sharers if s != w]
        if line.owner is not None and line.owner != w:
            far.append(line.owner)
        cost = max((self.dist(s, w) for s in set(far)), default=HIT)
        line.owner, line.sharers = w, {w}
        line.free_at = t + cost
        return t + cost

    # ---- queues ---------------------------------------------------------
    def push(self, w, task, t):
        t = self.write(self.bottom[w], w, t) + PUSH_NS
        d = self.dq[w]
        if len(d) >= DEQUE_CAP:  # spill the older half
            t = self.write(self.inject_line, w, t)
            for _ in range(DEQUE_CAP // 2):
                self.inject.append(d.popleft())
            t = self.wake_one(w, t)
        d.append(task)
        return t

    def wake_one(self, w, t):
        t = self.read(self.idle_line, w, t)
        if self.sleeping and not self.searching:
            v = self.sleeping.pop()
            t = self.write(self.idle_line, w, t) + 1000  # futex wake
            self.at(t + WAKE_NS, v)
        return t

    def wake(self, w, v, t):
        if v in self.sleeping:
            self.sleeping.discard(v)
            t += 1000
            self.at(t + WAKE_NS, v)
        return t

    def at(self, t, w):
        heapq.heappush(self.events, (t, w))

    # ---- running a task -------------------------------------------------
    def run(self, w, k, t):
        """Start task k on w: its spawns and its run are later steps."""
        creator = self.tasks[k][0]
        if creator != w:
            self.moved += 1
            for _ in range(TASK_LINES):
                t += self.dist(creator, w)
        self.rounds[w] = 0
        if w in self.searching:  # rt->searching--
            self.searching.discard(w)
            t = self.write(self.idle_line, w, t)
        if self.mode == "mesh":
            self.hungry.discard(w)
        self.cur[w] = [k, 0]
        self.idle_since[w] = None
        return t

    def cont(self, w, t):
        """One step of w's running task: a spawn, or the rest of its run."""
        k, i = self.cur[w]
        _, run_ns, children = self.tasks[k]
        if i < len(children):
            self.cur[w][1] += 1
            t += SPAWN_NS
            j = len(self.tasks)
            self.tasks.append((w, children[i][0], children[i][1]))
            t = self.push(w, j, t)
            return self.after_push(w, t)
        self.cur[w] = None
        t += run_ns
        self.done += 1
        self.t_end = max(self.t_end, t)
        return t

    def after_push(self, w, t):
        if self.mode == "steal":
            return self.wake_one(w, t)
        return self.mesh_balance(w, t)

    # ---- mesh mode -----------------------------------------------------
    def send(self, w, v, want, t):
        """Send up to `want` of w's oldest tasks to v as one chunk; the
        time and whether a chunk went (v's ring from w has RING slots)."""
        d = self.dq[w]
        k = min(want, CHUNK, len(d))
        if k <= 0 or self.in_ring[(w, v)] >= RING:
            return t, False
        self.in_ring[(w, v)] += 1
        chunk = [d.popleft() for _ in range(k)]
        key = (w, v)
        line = self.chunk_line.setdefault(key, Line(w))
        t = self.write(line, w, t) + k  # 128-byte chunk: two lines
        t = self.write(line, w, t)
        self.inbox[v].append((w, chunk))
        t = self.write(self.inbox_line[v], w, t)
        return self.wake(w, v, t), True

    def hline(self, v):
        return self.hungry_lines[self.group[v]] if GROUP_WORDS else self.hungry_line

    def mesh_balance(self, w, t):
        load = len(self.dq[w])
        if CLAIM_ALL:
            return self.feed_all(w, load, t)
        t = self.read(self.hungry_line, w, t)
        if self.hungry:
            same, other = self.order[w]
            for v in same + other:
                if v in self.hungry:
                    if load < 2 and v in self.sleeping:
                        continue
                    self.hungry.discard(v)
                    t = self.write(self.hungry_line, w, t)
                    want = self.feed[w]
                    self.fed[w] += 1
                    self.feed[w] = min(CHUNK, want * 2)
                    return self.send(w, v, min(want, load), t)[0]
        return self.threshold(w, load, t)

    def feed_all(self, w, load, t):
        """Claim every hungry worker of the nearest hunger word that has
        any with one write, and share the backlog among them: each gets
        up to the feed size (1, 2, 4 ... 31 while feeds keep coming) and
        at most load / (claimed + 1) (mesh.c, mesh_feed)."""
        same, other = self.order[w]
        seen = set()
        for v in [w] + same + other:
            g = self.group[v]
            if g in seen:
                continue
            seen.add(g)
            line = self.hline(v)
            t = self.read(line, w, t)
            members = [u for u in self.hungry
                       if self.hline(u) is line and u != w and
                       (load >= 2 or u not in self.sleeping)]
            if not members:
                continue
            t = self.write(line, w, t)
            members.sort(key=lambda u: (self.group[u] != self.group[w], u))
            if CLAIM_CAP:
                members = members[:CLAIM_CAP]
            want = self.feed[w]
            self.fed[w] += 1
            self.feed[w] = min(CHUNK, want * 2)
            share = max(1, min(want, load // (len(members) + 1)))
            for u in members:
                left = len(self.dq[w])
                if left < 1 or (left < 2 and u in self.sleeping):
                    break
                self.hungry.discard(u)
                t = self.send(w, u, min(share, left), t)[0]
            return t
        return self.threshold(w, load, t)

    def threshold(self, w, load, t):
        if load < THRESHOLD or self.inject:
            return t
        if self.gate[w]:
            self.gate[w] -= 1
            return t
        same, other = self.order[w]
        cands = (same + other)[:PROBES]
        for v in cands:
            t = self.read(self.load_line[v], w, t)
            if 2 * self.load_pub[v] < THRESHOLD:
                t, sent = self.send(w, v, min(load // 2, CHUNK), t)
                if not sent:
                    self.gate[w] = THRESHOLD // 4
                return t
        self.gate[w] = THRESHOLD // 4
        return t

    def mesh_tick(self, w, t):
        if not self.fed[w]:
            self.feed[w] = 1
        self.fed[w] = 0
        self.load_pub[w] = len(self.dq[w])
        return self.write(self.load_line[w], w, t)

    # ---- the worker loop ---------------------------------------------
    def step(self, w, t):
        if self.done == len(self.tasks):
            return
        if self.cur[w]:
            return self.at(self.cont(w, t), w)
        if self.mode == "mesh":
            self.ticks[w] -= 1
            if self.ticks[w] <= 0:
                self.ticks[w] = TICK
                t = self.mesh_tick(w, t)
        d = self.dq[w]
        if d:
            t = self.write(self.bottom[w], w, t)
            return self.at(self.run(w, d.pop(), t), w)
        if self.mode == "mesh":
            t = self.read(self.inbox_line[w], w, t)
            if self.inbox[w]:
                t = self.write(self.inbox_line[w], w, t)
                got = []
                while self.inbox[w]:
                    src, chunk = self.inbox[w].popleft()
                    self.in_ring[(src, w)] -= 1
                    t = self.read(self.chunk_line[(src, w)], w, t)
                    got += chunk
                self.hungry.discard(w)
                for k in reversed(got[1:]):
                    d.appendleft(k)
                self.load_pub[w] = len(d)
                t = self.write(self.load_line[w], w, t)
                return self.at(self.run(w, got[0], t), w)
        if self.inject:
            t = self.write(self.inject_line, w, t)
            if self.inject:
                got = [self.inject.popleft()
                       for _ in range(min(INJECT_BATCH, len(self.inject)))]
                for k in got[1:]:
                    d.appendleft(k)
                return self.at(self.run(w, got[0], t), w)
        if self.mode == "mesh":
            if w not in self.hungry:
                self.hungry.add(w)
                t = self.write(self.hline(w), w, t)
            if self.idle_since[w] is None:
                self.idle_since[w] = t
            if t - self.idle_since[w] < MESH_SPIN_NS:
                # Wait on the inbox line: re-read when a producer writes it
                # (modelled as a poll every 200 ns, a hit until written).
                return self.at(t + 200, w)
        # Steal: one rotation of the victims.
        order = list(range(self.n))
        start = self.rng.randrange(self.n)
        for i in range(self.n):
            v = order[(start + i) % self.n]
            if v == w:
                continue
            t = self.read(self.top[v], w, t)
            t = self.read(self.bottom[v], w, t)
            if self.dq[v]:
                t = self.write(self.top[v], w, t)
                if self.dq[v]:
                    k = self.dq[v].popleft()
                    if self.mode == "mesh":
                        self.hungry.discard(w)
                    return self.at(self.run(w, k, t), w)
        # Nothing: spin a few rotations, then sleep.
        self.rounds[w] += 1
        if self.rounds[w] <= SPIN_ROUNDS:
            if w not in self.searching:  # rt->searching++
                self.searching.add(w)
                t = self.write(self.idle_line, w, t)
            return self.at(t, w)
        self.searching.discard(w)
        self.rounds[w] = 0
        self.idle_since[w] = None
        self.write(self.idle_line, w, t)  # searching--, idle++
        self.sleeping.add(w)

    def go(self):
        while self.events:
            t, w = heapq.heappop(self.events)
            if w in self.sleeping:
                continue
            self.step(w, t)
        return self.t_end


def tree(depth, run_ns):
    def node(dd):
        return (run_ns, [node(dd - 1) for _ in range(2)] if dd > 1 else [])
    return node(depth)


def simulate(mode, workload, n, groups, seed):
    s = Sim(mode, n, groups, seed)
    if workload == "fanout":
        s.tasks.append((0, 0, [(2000, [])] * 100000))
        s.dq[0].append(0)
    elif workload == "tree":
        r = tree(16, 1000)
        s.tasks.append((0, r[0], r[1]))
        s.dq[0].append(0)
    elif workload == "fanout8":
        for g in range(groups):
            w = g * n // groups
            s.tasks.append((w, 0, [(2000, [])] * (100000 // groups)))
            s.dq[w].append(len(s.tasks) - 1)
    elif workload == "local":
        for w in range(n):
            s.tasks.append((w, 0, [(2000, [])] * 2000))
            s.dq[w].append(len(s.tasks) - 1)
    for w in range(n):
        s.at(0, w)
    end = s.go()
    assert s.done == len(s.tasks), (s.done, len(s.tasks))
    return end, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workloads", default="fanout,fanout8,tree,local")
    ap.add_argument("--variant", default="",
                    help="oneword, oneclaim, claim8 (comma-separated)")
    a = ap.parse_args()
    global GROUP_WORDS, CLAIM_ALL, CLAIM_CAP
    GROUP_WORDS = "oneword" not in a.variant
    CLAIM_ALL = "oneclaim" not in a.variant
    CLAIM_CAP = 8 if "claim8" in a.variant else 0
    print(f"{a.workers} workers in {a.groups} L3 groups; "
          f"line transfer {L_IN} ns inside a group, {L_OUT} ns across")
    print(f"{'workload':8} {'mode':6} {'makespan ms':>12} {'moved':>8} "
          f"{'xfers in':>9} {'xfers out':>10} {'mesh/steal':>10}")
    for wl in a.workloads.split(","):
        base = None
        for mode in ("steal", "mesh"):
            end, s = simulate(mode, wl, a.workers, a.groups, a.seed)
            ratio = "" if base is None else f"{end / base:10.2f}"
            base = base or end
            print(f"{wl:8} {mode:6} {end / 1e6:12.3f} {s.moved:8d} "
                  f"{s.xfer[0]:9d} {s.xfer[1]:10d} {ratio:>10}")


if __name__ == "__main__":
    main()
