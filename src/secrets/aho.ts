// An Aho-Corasick automaton over UTF-16 code units: one pass over the output finds every
// occurrence of every pattern, whatever their number, and its state says how much of the end of
// the text could still grow into a pattern, which is exactly what a stream must hold back.
// Nodes live in typed arrays; a node with a single child (most of them: the patterns are long
// and share little) needs no Map. The shallow nodes, where the search spends nearly all its time
// on text that is no secret, also get a full transition row over the patterns' alphabet, up to a
// memory budget, so a step there is one array read.

const NONE = -1;
const MANY = -2;
/** Int32 entries of the dense rows: 4 MiB, every node of a few dozen secrets, the shallow ones of hundreds. */
const DENSE_BUDGET = 1 << 20;

export class Automaton {
  /** Length of the string that leads from the root to each node. */
  readonly depth: Int32Array;
  /** The longest proper suffix of a node's string that is also a node. */
  readonly fail: Int32Array;
  /** The longest pattern ending here: this node if it ends one, else the nearest on its fail chain that does, else -1. */
  readonly match: Int32Array;
  /** Depth of the deepest node on the fail chain (itself included) that has children: how long a suffix may still grow. */
  readonly liveDepth: Int32Array;
  private readonly onlyCode: Int32Array;
  private readonly onlyChild: Int32Array;
  private readonly many: Array<Map<number, number> | undefined>;
  private readonly root = new Int32Array(0x10000);
  /** Alphabet class of each code unit; 0 for those in no pattern, which always lead to the root. */
  private readonly classOf = new Uint16Array(0x10000);
  private width = 1;
  private rowOf: Int32Array;
  private dense: Int32Array;

  constructor(patterns: readonly string[], denseBudget = DENSE_BUDGET) {
    const size = 1 + patterns.reduce((n, p) => n + p.length, 0);
    this.depth = new Int32Array(size);
    this.fail = new Int32Array(size);
    this.match = new Int32Array(size).fill(NONE);
    this.liveDepth = new Int32Array(size);
    this.onlyCode = new Int32Array(size).fill(NONE);
    this.onlyChild = new Int32Array(size);
    this.many = [];
    this.rowOf = new Int32Array(size).fill(NONE);
    this.dense = new Int32Array(0);
    let count = 1;
    for (const p of patterns) {
      if (p.length === 0) continue;
      let node = 0;
      for (let i = 0; i < p.length; i++) {
        const code = p.charCodeAt(i);
        let child = this.child(node, code);
        if (child === NONE) {
          child = count++;
          this.depth[child] = i + 1;
          this.addChild(node, code, child);
        }
        node = child;
      }
      this.match[node] = node;
    }
    this.densify(this.link(count), denseBudget);
  }

  /** The state after reading `code` in state `node`. */
  step(node: number, code: number): number {
    const cls = this.classOf[code];
    if (cls === 0) return 0;
    for (;;) {
      const row = this.rowOf[node];
      if (row >= 0) return this.dense[row * this.width + cls];
      const next = this.child(node, code);
      if (next !== NONE) return next;
      node = this.fail[node];
    }
  }

  /** `step` before the dense rows exist. */
  private sparseStep(node: number, code: number): number {
    for (;;) {
      if (node === 0) return this.root[code];
      const next = this.child(node, code);
      if (next !== NONE) return next;
      node = this.fail[node];
    }
  }

  private child(node: number, code: number): number {
    if (node === 0) return this.root[code] || NONE;
    const only = this.onlyCode[node];
    if (only === code) return this.onlyChild[node];
    if (only === MANY) return this.many[node]!.get(code) ?? NONE;
    return NONE;
  }

  private addChild(node: number, code: number, child: number): void {
    if (node === 0) {
      this.root[code] = child;
      return;
    }
    const only = this.onlyCode[node];
    if (only === NONE) {
      this.onlyCode[node] = code;
      this.onlyChild[node] = child;
    } else if (only === MANY) {
      this.many[node]!.set(code, child);
    } else {
      this.many[node] = new Map([[only, this.onlyChild[node]], [code, child]]);
      this.onlyCode[node] = MANY;
    }
  }

  private children(node: number): Array<[number, number]> {
    if (node === 0) {
      const out: Array<[number, number]> = [];
      for (let c = 0; c < 0x10000; c++) if (this.root[c] !== 0) out.push([c, this.root[c]]);
      return out;
    }
    const only = this.onlyCode[node];
    if (only === MANY) return [...this.many[node]!];
    return only === NONE ? [] : [[only, this.onlyChild[node]]];
  }

  /** Breadth first, so every node's fail target is finished before the node itself. */
  private link(count: number): Int32Array {
    const queue = new Int32Array(count);
    let head = 0;
    let tail = 0;
    const rootChildren = this.children(0);
    this.liveDepth[0] = 0;
    for (const [, child] of rootChildren) queue[tail++] = child;
    while (head < tail) {
      const node = queue[head++];
      const kids = this.children(node);
      const f = this.fail[node];
      if (this.match[node] === NONE) this.match[node] = this.match[f];
      this.liveDepth[node] = kids.length > 0 ? this.depth[node] : this.liveDepth[f];
      for (const [code, child] of kids) {
        this.fail[child] = node === 0 ? 0 : this.sparseStep(f, code);
        queue[tail++] = child;
      }
    }
    return queue.subarray(0, tail);
  }

  /** Rows for the root and the shallowest nodes: a node's fail target is shallower, so its row exists first. */
  private densify(order: Int32Array, budget: number): void {
    const codes: number[] = [];
    for (const p of new Set(this.allCodes(order))) codes.push(p);
    codes.sort((a, b) => a - b).forEach((code, i) => (this.classOf[code] = i + 1));
    this.width = codes.length + 1;
    const rows = Math.max(1, Math.min(order.length + 1, Math.floor(budget / this.width)));
    this.dense = new Int32Array(rows * this.width);
    this.rowOf[0] = 0;
    for (const [code, child] of this.children(0)) this.dense[this.classOf[code]] = child;
    for (let i = 0; i + 1 < rows; i++) {
      const node = order[i];
      const base = (i + 1) * this.width;
      const from = this.rowOf[this.fail[node]] * this.width;
      this.dense.copyWithin(base, from, from + this.width);
      for (const [code, child] of this.children(node)) this.dense[base + this.classOf[code]] = child;
      this.rowOf[node] = i + 1;
    }
  }

  private *allCodes(order: Int32Array): Iterable<number> {
    for (const [code] of this.children(0)) yield code;
    for (const node of order) for (const [code] of this.children(node)) yield code;
  }
}
